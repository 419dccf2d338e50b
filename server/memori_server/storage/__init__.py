"""Persistence of sessions, messages and request ids: SQLAlchemy Core statements run as
units of work by drivers on SQLite (embedded) or PostgreSQL (see `database`)."""
