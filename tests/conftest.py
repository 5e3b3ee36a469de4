"""Fixtures every test directory may use: the databases metalcast runs on.

``database_url``
    parametrized over SQLite and PostgreSQL: a fresh, empty database for one test
    (a file in ``tmp_path``, or a new database in the session's PostgreSQL cluster).
    The PostgreSQL case carries the ``postgres`` marker.
``postgres_url``
    a fresh, empty PostgreSQL database for one test (marked ``postgres``).
``postgres_cluster``
    the session's throwaway cluster (:mod:`postgres`), started the first time a
    test needs it, stopped and removed at the end of the session.

``pytest -m postgres`` runs only the PostgreSQL tests, ``-m "not postgres"`` none of
them (and never starts the cluster).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres import Cluster, PostgresUnavailable


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "postgres_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    try:
        cluster = Cluster.start()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: Cluster) -> Iterator[str]:
    name = postgres_cluster.create_database()
    yield postgres_cluster.url(name)
    postgres_cluster.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'metalcast.sqlite'}"
        return
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    name = cluster.create_database()
    yield cluster.url(name)
    cluster.drop_database(name)
