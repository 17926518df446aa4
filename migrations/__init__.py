"""Alembic migrations; the schema of every liuhen database is created and changed only here."""
