"""The database engine's transactions: SQLite writers of one process take turns."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from metalcast.db import repository as repo
from metalcast.db.engine import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'engine.sqlite'}")
    database.migrate()
    yield database
    database.dispose()


def _create(db: Database, name: str) -> None:
    with db.begin() as conn:
        repo.create_node(
            conn, {"driver": "fake-hardware", "name": name, "provision_state": "enroll"}
        )


def test_a_transaction_waits_for_the_one_another_thread_holds(db: Database) -> None:
    entered = threading.Event()
    other = threading.Thread(target=lambda: (_create(db, "second"), entered.set()))
    with db.begin() as conn:
        repo.create_node(
            conn, {"driver": "fake-hardware", "name": "first", "provision_state": "enroll"}
        )
        other.start()
        # the other writer queues behind this transaction instead of racing it
        assert not entered.wait(0.2)
    assert entered.wait(10)
    other.join(10)
    with db.read() as conn:
        names = [n.name for n in repo.list_nodes(conn, repo.NodeFilters(), repo.Page())]
    assert names == ["first", "second"]


def test_a_transaction_may_open_inside_another_in_the_same_thread(db: Database) -> None:
    with db.begin() as outer:
        repo.create_node(
            outer, {"driver": "fake-hardware", "name": "outer", "provision_state": "enroll"}
        )
        with db.begin() as inner:  # reads, as code nested this way does; no deadlock
            assert repo.list_nodes(inner, repo.NodeFilters(), repo.Page()) == []
    with db.read() as conn:
        assert [n.name for n in repo.list_nodes(conn, repo.NodeFilters(), repo.Page())] == ["outer"]


def test_many_threads_write_without_losing_a_row(db: Database) -> None:
    threads = [
        threading.Thread(target=lambda i=i: [_create(db, f"n-{i}-{j}") for j in range(10)])
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with db.read() as conn:
        assert repo.count_nodes(conn, repo.NodeFilters()) == 80
