"""Locust users that behave like the kit's real clients, through nginx over HTTPS."""
