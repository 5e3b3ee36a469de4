"""Start-up recovery: what a previous process of this conductor left behind.

A conductor that died (or was stopped before its workers finished) leaves nodes locked
by its hostname, some in a work state, some with a power action half done.  Nothing
is running them any more: their locks are released, work states go to their failure
state with the reason recorded, and stale ``target_power_state`` values are cleared.
Config drives (user data) of nodes no deploy waits for any more are removed: a
process killed at the wrong moment, or a changed secret key, can leave some behind.
"""

from __future__ import annotations

import logging
import time

from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask
from metalcast.context import SYSTEM
from metalcast.db import repository as repo
from metalcast.db.models import Node
from metalcast.states import WORK, ProvisionState

PS = ProvisionState

_log = logging.getLogger(__name__)


def recover(rt: Runtime) -> int:
    """Release this host's stale locks and fail the work they guarded; returns how
    many nodes were recovered."""
    with rt.db.read() as conn:
        held = repo.reserved_by(conn, rt.hostname)
    for node in held:
        try:
            _recover_node(rt, node)
        except Exception:  # boundary: one bad node must not stop the conductor starting
            _log.exception("%s: recovery failed", node.uuid)
    _clear_stale_power_targets(rt)
    _sweep_config_drives(rt)
    return len(held)


def _sweep_config_drives(rt: Runtime) -> None:
    """Remove the config drives of nodes that are not deploying (any conductor's)."""
    if rt.configdrives is None:
        return
    started = time.time()
    with rt.db.read() as conn:
        deploying = repo.nodes_in_states(conn, [PS.DEPLOYING.value, PS.DEPLOYWAIT.value])
    removed = rt.configdrives.sweep(keep=[n.uuid for n in deploying], older_than=started)
    if removed:
        _log.warning("removed %d config drive(s) that no deploy waits for", removed)


def _recover_node(rt: Runtime, node: Node) -> None:
    state = ProvisionState(node.provision_state)
    with NodeTask(rt, node, shared=False, user=SYSTEM.who, purpose="recovery") as task:
        if node.target_power_state:
            task.update(target_power_state=None)
        if state in WORK:
            task.fail(
                f"metalcast conductor {rt.hostname} restarted while the node was in state "
                f"'{state.value}'; the operation was interrupted"
            )
        elif node.target_power_state:
            task.save(
                event=f"metalcast conductor {rt.hostname} restarted during a power action "
                f"('{node.target_power_state}'); the action was interrupted",
                event_type="power",
                severity="WARNING",
            )
    _log.warning("%s: recovered from state %s", node.uuid, state.value)


def _clear_stale_power_targets(rt: Runtime) -> None:
    """A target_power_state on an unlocked node is a leftover: nothing is powering it."""
    filters = repo.NodeFilters(reserved=False, conductor_group=rt.settings.conductor_group)
    marker: str | None = None
    with rt.db.begin() as conn:
        while True:
            page = repo.list_nodes(conn, filters, repo.Page(limit=500, marker=marker))
            for node in page:
                if node.target_power_state:
                    repo.update_node(conn, node.id, {"target_power_state": None})
            if len(page) < 500:
                return
            marker = page[-1].uuid
