"""Reads and writes of inspection rules (API 1.96).  Functions take a connection; the
caller owns the transaction.

Errors raised: ``NotFound`` (404) for a missing rule, ``Conflict`` (409) for a taken
UUID, ``InvalidInput`` (400) for a bad marker or sort key.
"""

from __future__ import annotations

import sqlalchemy as sa

from metalcast.db import rows
from metalcast.db import tables as t
from metalcast.db.models import InspectionRule, JSONDict, from_row
from metalcast.db.rows import Page, new_uuid

_WHAT = "Inspection rule"


def create_inspection_rule(conn: sa.Connection, values: JSONDict) -> InspectionRule:
    """Insert a rule (``uuid`` generated if absent).  Raises ``Conflict`` for a taken
    UUID."""
    values = {
        "uuid": new_uuid(),
        "priority": 0,
        "phase": "main",
        "sensitive": False,
        "conditions": [],
        **values,
    }
    rows.check_free(
        conn,
        t.inspection_rules,
        {"uuid": values["uuid"]},
        exclude_id=None,
        message=f"An inspection rule with UUID {values['uuid']} already exists.",
    )
    return get_inspection_rule_by_id(conn, rows.insert(conn, t.inspection_rules, values))


def get_inspection_rule(conn: sa.Connection, ident: str) -> InspectionRule:
    """The rule with UUID ``ident``.  Raises ``NotFound`` (``InvalidInput``: not a UUID)."""
    return from_row(InspectionRule, rows.get_by_ident(conn, t.inspection_rules, ident, _WHAT))


def get_inspection_rule_by_id(conn: sa.Connection, rule_id: int) -> InspectionRule:
    """Raises ``NotFound``."""
    return rows.by_id(conn, t.inspection_rules, InspectionRule, rule_id, _WHAT)


def list_inspection_rules(conn: sa.Connection, page: Page) -> list[InspectionRule]:
    """A page of rules.  Raises ``InvalidInput`` for a bad sort key or marker."""
    query = rows.paginate(conn, t.inspection_rules, sa.select(t.inspection_rules), page)
    return rows.records(conn, InspectionRule, query)


def rules_of_phase(conn: sa.Connection, phase: str = "main") -> list[InspectionRule]:
    """Every rule of ``phase``, in the order they were created (for evaluation)."""
    table = t.inspection_rules
    query = sa.select(table).where(table.c.phase == phase).order_by(table.c.id)
    return rows.records(conn, InspectionRule, query)


def update_inspection_rule(conn: sa.Connection, rule_id: int, values: JSONDict) -> None:
    rows.update(conn, t.inspection_rules, rule_id, values)


def destroy_inspection_rule(conn: sa.Connection, rule_id: int) -> None:
    conn.execute(sa.delete(t.inspection_rules).where(t.inspection_rules.c.id == rule_id))


def destroy_all_inspection_rules(conn: sa.Connection) -> int:
    """Delete every rule; how many there were."""
    return conn.execute(sa.delete(t.inspection_rules)).rowcount
