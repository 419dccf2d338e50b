"""Persistence of sessions and messages (SQLAlchemy 2.x async; SQLite or PostgreSQL)."""
