"""Persistence: tables, the engine, repositories and Alembic migrations."""
