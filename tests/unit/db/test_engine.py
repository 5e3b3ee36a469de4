"""Which database URLs the engine takes, and what it shows of them."""

from __future__ import annotations

import pytest
from postgres import PASSWORD

from metalcast.db.engine import Database, DatabaseError

SECRET = "Url-Secret-Pw-8a1c"


def test_postgresql_without_a_driver_gets_psycopg_and_its_password_is_masked() -> None:
    db = Database(f"postgresql://metalcast:{SECRET}@db.example:5433/metalcast")
    try:
        assert db.backend == "postgresql" and not db.is_sqlite
        assert db.engine.dialect.driver == "psycopg"
        assert db.safe_url == "postgresql+psycopg://metalcast:***@db.example:5433/metalcast"
        assert SECRET not in repr(db.engine.url)
    finally:
        db.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"mysql+pymysql://root:{SECRET}@db/metalcast", "mysql databases are not supported"),
        (f"postgresql+psycopg://root:{SECRET}@db:port/x", "not a database URL"),
        (f"{SECRET}", "not a database URL"),
        (f"postgresql+psycopg2://root:{SECRET}@db/x", "through psycopg"),
    ],
)
def test_other_urls_are_refused_without_repeating_them(url: str, message: str) -> None:
    with pytest.raises(DatabaseError, match=message) as refused:
        Database(url)
    assert SECRET not in str(refused.value)


def test_sqlite_file_steps_are_refused_on_postgresql() -> None:
    db = Database(f"postgresql+psycopg://metalcast:{SECRET}@127.0.0.1:1/metalcast")
    try:
        for step in (db.storage_version, db.vacuum, lambda: db.set_storage_version(1)):
            with pytest.raises(DatabaseError, match="for SQLite databases only"):
                step()
        db.checkpoint()  # PostgreSQL's write-ahead log is its own: nothing to do
    finally:
        db.dispose()


def test_a_refused_login_says_so_without_the_password(postgres_url: str) -> None:
    wrong = postgres_url.replace(f":{PASSWORD}@", f":{SECRET}@")
    assert wrong != postgres_url
    db = Database(wrong)
    try:
        with pytest.raises(DatabaseError, match="password authentication failed") as refused:
            db.migrate()
    finally:
        db.dispose()
    assert SECRET not in str(refused.value)
    assert "metalcast:***@127.0.0.1" in str(refused.value)


def test_a_login_without_a_password_says_where_to_give_it(postgres_url: str) -> None:
    bare = postgres_url.replace(f":{PASSWORD}@", "@")
    assert bare != postgres_url
    db = Database(bare)
    try:
        with pytest.raises(DatabaseError) as refused:
            db.migrate()
    finally:
        db.dispose()
    message = str(refused.value)
    assert "no password supplied" in message
    assert "PGPASSWORD or ~/.pgpass" in message
    assert "sqlalche.me" not in message
