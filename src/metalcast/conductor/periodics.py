"""Periodic work: power-state sync, wait-state timeouts, the conductor's heartbeat.

Each pass is bounded and never raises: a node that cannot be handled now (locked, in
maintenance, busy) is skipped until the next pass.  The power sync and the timeout
check look only at the nodes the hash ring gives this conductor
(:meth:`~metalcast.conductor.ring.ConductorRing.owns`), so that conductors sharing a
group split the nodes between them instead of each handling all of them.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
import time
from collections.abc import Mapping
from datetime import datetime

from metalcast.conductor import agent_state, boot_mode, direct
from metalcast.conductor.interfaces import OperationFailed
from metalcast.conductor.pass_pool import PassPool
from metalcast.conductor.power import RESULT_OF, get_power, set_power
from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask, try_acquire
from metalcast.context import SYSTEM
from metalcast.db import repository as repo
from metalcast.db.models import Node
from metalcast.states import (
    WAIT,
    WAIT_TIMEOUT_SETTING,
    WORK,
    Fault,
    PowerState,
    PowerTarget,
    ProvisionState,
)

PS = ProvisionState
_log = logging.getLogger(__name__)

#: consecutive failed syncs before a node goes to maintenance (Ironic's default)
POWER_SYNC_MAX_FAILURES = 3
POWER_FAULT = Fault.POWER_FAILURE
_PAGE = 500
_BUSY = WORK | WAIT


#: states the sync leaves alone besides work and wait states (Ironic's): an enrolled
#: node's BMC is not verified yet, an adoption failure is the operator's to look at
_NOT_SYNCED = _BUSY | {PS.ENROLL, PS.ADOPTFAIL}
_NOT_SYNCED_NAMES = frozenset(state.value for state in _NOT_SYNCED)


def sync_candidates(rt: Runtime, *, recovering: bool = False) -> list[Node]:
    """Nodes of this conductor (:meth:`Runtime.owned`) the power sync may look at: not
    locked, with a power interface, not in a work or wait state (the agent reboots
    nodes there), nor in ``enroll`` or ``adopt failed``; not in maintenance, or, when
    ``recovering``, only those in maintenance because their power state could not be
    read."""
    filters = repo.NodeFilters(
        maintenance=recovering,
        fault=POWER_FAULT if recovering else None,
        reserved=False,
        conductor_group=rt.settings.conductor_group,
        not_in_states=_NOT_SYNCED_NAMES,  # read only the rows that may be synced
    )
    mine = rt.owned()
    out: list[Node] = []
    marker: str | None = None
    with rt.db.read() as conn:
        while True:
            page = repo.list_nodes(conn, filters, repo.Page(limit=_PAGE, marker=marker))
            out.extend(
                n
                for n in page
                if PS(n.provision_state) not in _NOT_SYNCED and n.power_interface and mine(n)
            )
            if len(page) < _PAGE:
                return out
            marker = page[-1].uuid


class PowerSync:
    """Compares every candidate node's recorded power state with its BMC's."""

    def __init__(
        self, rt: Runtime, *, call_timeout: float, max_failures: int = POWER_SYNC_MAX_FAILURES
    ) -> None:
        self.rt = rt
        self.call_timeout = call_timeout
        self.max_failures = max_failures
        self._pool = PassPool(rt.settings.sync_power_state_workers, name="power-sync")

    def run_once(self) -> dict[str, int]:
        """One pass over the candidates; returns how many nodes ended how.

        Nodes put in maintenance for a power failure are probed too: the first good
        reading takes them out of maintenance again (Ironic's power recovery).
        """
        started = time.monotonic()
        nodes = sync_candidates(self.rt)
        recovering = sync_candidates(self.rt, recovering=True)
        futures = {self._pool.submit(self._sync, n): n for n in nodes}
        futures.update({self._pool.submit(self._recover, n): n for n in recovering})
        nodes = [*nodes, *recovering]
        rounds = math.ceil(len(nodes) / self.rt.settings.sync_power_state_workers) or 1
        done, late = cf.wait(futures, timeout=self.call_timeout * rounds)
        counts: dict[str, int] = {}
        for future in done:
            outcome = future.result()
            counts[outcome] = counts.get(outcome, 0) + 1
        for future in late:
            future.cancel()
            node = futures[future]
            self._record_failure(node, f"the BMC did not answer within {self.call_timeout:g}s")
            counts["timeout"] = counts.get("timeout", 0) + 1
        _log.info(
            "power sync pass: %d node(s) in %.3f s (%s)",
            len(nodes),
            time.monotonic() - started,
            ", ".join(f"{outcome}: {n}" for outcome, n in sorted(counts.items())),
        )
        return counts

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _sync(self, node: Node) -> str:
        try:
            return self._sync_node(node)
        except Exception:  # boundary: one node's trouble must not end the pass
            _log.exception("%s: power sync failed", node.uuid)
            return "error"

    def _sync_node(self, node: Node) -> str:
        probe = NodeTask(self.rt, node, shared=True, user=SYSTEM.who, purpose="power sync")
        try:
            actual = get_power(probe)
        except OperationFailed as exc:
            self._record_failure(node, exc.message)
            return "failed"
        failures = node.driver_internal_info.get("power_sync_failures")
        # the boot mode when never read, or when the machine was handled out of band
        moved = node.power_state != actual.value
        unread = node.boot_mode is None and node.secure_boot is None
        observed = boot_mode.observe(probe) if moved or unread else None
        modes = observed is not None and observed != (node.boot_mode, node.secure_boot)
        if not moved and not failures and not modes:
            return "in sync"
        task = try_acquire(self.rt, node.id, user=SYSTEM.who, purpose="power sync")
        if not isinstance(task, NodeTask):
            return "locked"
        with task:
            current = task.node
            if current.maintenance or PS(current.provision_state) in WORK:
                return "busy"
            if current.power_state != node.power_state:
                return "changed"  # someone else recorded a new state meanwhile
            task.set_internal(power_sync_failures=None)
            if observed is not None:
                boot_mode.read(task, observed)
            return self._apply(task, actual)

    def _apply(self, task: NodeTask, actual: PowerState) -> str:
        recorded = task.node.power_state
        if recorded == actual.value:
            task.save()
            return "in sync"
        if recorded is None:
            task.update(power_state=actual.value)
            task.save(event=f"Power state recorded: {actual.value}", event_type="power_sync")
            return "recorded"
        text = f"Power state changed out of band: {recorded} → {actual.value}"
        if self.rt.settings.force_power_state_during_sync and recorded in RESULT_OF.values():
            target = PowerTarget.ON if recorded == PowerState.ON else PowerTarget.OFF
            set_power(task, target)
            task.save(
                event=f"{text}; set back to {recorded} (force_power_state_during_sync)",
                event_type="power_sync",
                severity="WARNING",
            )
            return "forced"
        task.update(power_state=actual.value)
        task.save(event=text, event_type="power_sync", severity="WARNING")
        return "out of band"

    def _recover(self, node: Node) -> str:
        try:
            return self._recover_node(node)
        except Exception:  # boundary: one node's trouble must not end the pass
            _log.exception("%s: power recovery failed", node.uuid)
            return "error"

    def _recover_node(self, node: Node) -> str:
        probe = NodeTask(self.rt, node, shared=True, user=SYSTEM.who, purpose="power recovery")
        try:
            actual = get_power(probe)
        except OperationFailed:
            return "still failing"
        task = try_acquire(self.rt, node.id, user=SYSTEM.who, purpose="power recovery")
        if not isinstance(task, NodeTask):
            return "locked"
        with task:
            current = task.node
            if not current.maintenance or current.fault != POWER_FAULT:
                return "changed"
            task.set_internal(power_sync_failures=None)
            task.update(
                maintenance=False,
                maintenance_reason=None,
                fault=None,
                last_error=None,
                power_state=actual.value,
            )
            task.save(
                event=f"The BMC answers again (power state {actual.value}); "
                "maintenance for power failure cleared",
                event_type="power_sync",
            )
            return "recovered"

    def _record_failure(self, node: Node, message: str) -> None:
        task = try_acquire(self.rt, node.id, user=SYSTEM.who, purpose="power sync")
        if not isinstance(task, NodeTask):
            return
        with task:
            count = int(task.node.driver_internal_info.get("power_sync_failures", 0)) + 1
            task.set_internal(power_sync_failures=count)
            if count < self.max_failures or task.node.maintenance:
                task.save()
                return
            reason = (
                f"Power state sync failed {count} times in a row; the node is put in "
                f"maintenance. Last error: {message}"
            )
            task.update(
                maintenance=True, maintenance_reason=reason, fault=POWER_FAULT, last_error=reason
            )
            task.save(event=reason, event_type="power_sync", severity="ERROR")


# --------------------------------------------------------------------- timeouts

#: the setting that bounds each wait state (from the state table), and what the node
#: waits for there
WAIT_TIMEOUTS: Mapping[ProvisionState, tuple[str, str]] = {
    state: (
        setting,
        "inspection data from the agent" if state == PS.INSPECTWAIT else "callback from the agent",
    )
    for state, setting in WAIT_TIMEOUT_SETTING.items()
}


def _waiting_since(node: Node) -> datetime | None:
    started = node.driver_internal_info.get("wait_started_at")
    if isinstance(started, str):
        try:
            return datetime.fromisoformat(started)
        except ValueError:
            pass
    return node.provision_updated_at


def timeout_message(node: Node, *, setting: str, limit: float, since: datetime) -> str:
    """The ``last_error`` of a node whose wait timed out: who went silent, since when."""
    state = PS(node.provision_state)
    what = WAIT_TIMEOUTS[state][1]
    last = agent_state.read(node.driver_internal_info).last_heartbeat
    side = f"the last agent heartbeat was at {last}" if last else "the agent never heartbeated"
    return (
        f"Timeout reached while waiting for {what} for node {node.uuid} in state "
        f"'{state.value}' ({setting}={limit:g}s); waiting since "
        f"{since.isoformat(timespec='seconds')}; {side}"
    )


def check_wait_timeouts(rt: Runtime) -> int:
    """Fail every node of this conductor (:meth:`Runtime.owned`) that waited too long; returns
    how many."""
    now = rt.clock.now()
    expired = 0
    mine = rt.owned()
    with rt.db.read() as conn:
        waiting = repo.nodes_in_states(conn, [s.value for s in WAIT_TIMEOUTS])
    for node in waiting:
        if node.reservation or not mine(node):
            continue
        setting = WAIT_TIMEOUTS[PS(node.provision_state)][0]
        limit = float(getattr(rt.settings, setting))
        since = _waiting_since(node)
        if not limit or since is None or (now - since).total_seconds() <= limit:
            continue
        message = timeout_message(node, setting=setting, limit=limit, since=since)
        expired += _expire(rt, node, message=message)
    return expired


def _expire(rt: Runtime, node: Node, *, message: str) -> int:
    task = try_acquire(rt, node.id, user=SYSTEM.who, purpose="wait timeout")
    if not isinstance(task, NodeTask):
        return 0
    with task:
        if task.node.provision_state != node.provision_state:
            return 0  # the agent called back meanwhile
        task.fail(message)
        if node.provision_state in (PS.RESCUEWAIT, PS.INSPECTWAIT):
            # as Ironic: powered off, no ramdisk boot
            operation = "Rescue" if node.provision_state == PS.RESCUEWAIT else "Inspection"
            direct.end_ramdisk(task, operation=operation)
    return 1


def heartbeat(rt: Runtime) -> None:
    """Tell the other processes this conductor is alive."""
    with rt.db.begin() as conn:
        repo.touch_conductor(conn, rt.hostname)
