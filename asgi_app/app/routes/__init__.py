"""Routers of the domain apps, included from app/main.py (one line each)."""
