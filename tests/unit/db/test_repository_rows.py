"""The repository's public reads for list views: plain node rows, scoped portgroups."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from metalcast.db import repository as repo
from metalcast.db import rows
from metalcast.db import tables as t
from metalcast.db.engine import Database
from metalcast.errors import Conflict, InvalidInput, NotFound


def _node(db: Database, name: str, owner: str | None = None) -> int:
    with db.begin() as conn:
        values = {"driver": "fake-hardware", "name": name, "provision_state": "enroll"}
        return repo.create_node(conn, {**values, "owner": owner}).id


def test_list_node_rows_reads_only_the_columns_asked_for(db: Database) -> None:
    for name in ("a", "b", "c"):
        _node(db, name, owner="p1" if name != "b" else "p2")
    with db.read() as conn:
        rows = repo.list_node_rows(
            conn, repo.NodeFilters(owner="p1"), page=repo.Page(limit=1), columns=("uuid", "name")
        )
        assert [set(r) for r in rows] == [{"uuid", "name"}]
        assert rows[0]["name"] == "a"
        after = repo.list_node_rows(
            conn,
            repo.NodeFilters(owner="p1"),
            page=repo.Page(marker=rows[0]["uuid"]),
            columns=("name",),
        )
        assert [r["name"] for r in after] == ["c"]
        with pytest.raises(InvalidInput, match="colour"):
            repo.list_node_rows(conn, repo.NodeFilters(), page=repo.Page(), columns=("colour",))


def test_list_portgroups_scopes_before_paging(db: Database) -> None:
    mine, theirs = _node(db, "mine"), _node(db, "theirs")
    with db.begin() as conn:
        repo.create_portgroup(conn, {"node_id": theirs, "name": "t0"})
        repo.create_portgroup(conn, {"node_id": mine, "name": "m0"})
        repo.create_portgroup(conn, {"node_id": mine, "name": "m1"})
    with db.read() as conn:
        page = repo.list_portgroups(conn, repo.Page(limit=2), node_ids=[mine])
    assert [g.name for g in page] == ["m0", "m1"]


def test_description_filter_ignores_case_and_takes_wildcards_literally(db: Database) -> None:
    with db.begin() as conn:
        for name, text in (("a", "Rack A, 100% ready"), ("b", "rack b"), ("c", None)):
            values = {"driver": "fake-hardware", "name": name, "provision_state": "enroll"}
            repo.create_node(conn, {**values, "description": text})
    with db.read() as conn:

        def found(text: str) -> list[str]:
            nodes = repo.list_nodes(conn, repo.NodeFilters(description_contains=text), repo.Page())
            return [node.name or "" for node in nodes]

        assert found("RACK") == ["a", "b"]
        assert found("100%") == ["a"]
        assert found("1_0") == []


def test_inserts_and_updates_refuse_a_key_that_is_no_column(db: Database) -> None:
    node_id = _node(db, "a")
    unknown = pytest.raises(sa.exc.CompileError, match="Unconsumed column names: colour")
    with unknown, db.begin() as conn:
        rows.insert(conn, t.ports, {"uuid": rows.new_uuid(), "node_id": node_id, "colour": 1})
    unknown = pytest.raises(sa.exc.CompileError, match="Unconsumed column names: colour")
    with unknown, db.begin() as conn:
        rows.update(conn, t.nodes, node_id, {"colour": "red"})


def test_unique_checks_and_lookups_take_their_values_as_parameters(db: Database) -> None:
    first, second = _node(db, "a"), _node(db, "b")
    with db.begin() as conn:
        rows.check_unique(conn, t.nodes, "node", {"name": "a"}, exclude_id=first)
        with pytest.raises(Conflict, match="A node with name a already exists"):
            rows.check_unique(conn, t.nodes, "node", {"name": "a"}, exclude_id=second)
        repo.update_node(conn, second, {"name": "c"})
        assert repo.get_node(conn, "c").id == second
        assert repo.get_node_by_id(conn, first).name == "a"
        with pytest.raises(NotFound):
            repo.get_node(conn, "b")
