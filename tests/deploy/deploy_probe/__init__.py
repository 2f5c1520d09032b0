"""Test-only app: its migration adds a column to a table the running release reads."""
