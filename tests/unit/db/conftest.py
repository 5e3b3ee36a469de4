"""The database of the tests here: migrated, on each database URL the suite runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from metalcast.db.engine import Database


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()
