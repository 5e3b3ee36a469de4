"""Redfish firmware: the ``redfish`` firmware interface, through sushy's UpdateService.

The node's components are the members of the BMC's FirmwareInventory that belong to
it: ``bmc`` (the member related to a Manager), ``bios`` (the one related to the
node's ComputerSystem itself) and every other member related to the system (a NIC's
firmware, …) or to nothing, under the BMC's own Id for it.  On a BMC that serves
several systems, members of the other systems are left out.

The ``update`` step (clean and service, as Ironic's, argument ``settings``: a list of
``{"component", "url", ["wait"]}``) reads the components, asks the BMC to update
each one in turn with ``UpdateService.SimpleUpdate`` (the BMC fetches the image at
``url`` itself: the conductor never does), follows the task the BMC answers with
(its progress goes to the node as the step's progress), waits ``wait`` seconds
after each update for the BMC to settle, and reads the components again: the
conductor stores what it read and records the versions before and after.

The step holds its conductor worker while the BMC works (bounded by
:data:`UPDATE_TIMEOUT` per component), as it never reboots the node: firmware that a
BMC applies only at the next boot shows its new version after that boot.

Errors::

    InvalidInput       settings malformed, a URL not http(s), an unknown component
    FatalDriverError   the BMC refused the update or its task failed or timed out
    RetryableDriverError  the BMC did not answer a read
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from metalcast.drivers.base import (
    DriverContext,
    FirmwareChange,
    FirmwareComponent,
    FirmwareInterface,
    StepOutcome,
    StepProgress,
    step,
)
from metalcast.drivers.bmc_call import Sleep
from metalcast.drivers.firmware import (
    STEP_ARGSINFO,
    STEP_NAME,
    FirmwareSetting,
    parse_settings,
)
from metalcast.drivers.redfish.client import (
    FirmwareItem,
    RedfishClient,
    RedfishSessions,
    RedfishTarget,
    UpdateTaskStatus,
)
from metalcast.drivers.redfish.info import SYSTEMS_PATH, RedfishInfo
from metalcast.drivers.redfish.interfaces import _RedfishBase
from metalcast.errors import DriverError, FatalDriverError, InvalidInput
from metalcast.secrecy.detect import display_url, scrub_text

BIOS = "bios"
BMC = "bmc"
#: seconds one component's update may take on the BMC
UPDATE_TIMEOUT = 3600.0
#: task states that end an update well
_DONE_STATES = frozenset({"Completed"})


def components_of(items: list[FirmwareItem], system: str | None) -> dict[str, FirmwareItem]:
    """The inventory ``items`` that belong to the node on ``system`` (None: the
    service's only system), by component name."""
    found: dict[str, FirmwareItem] = {}
    for item in items:
        name = _component_name(item, system)
        if name is not None and name not in found:
            found[name] = item
    return found


def _component_name(item: FirmwareItem, system: str | None) -> str | None:
    related = [path.rstrip("/") for path in item.related]
    if any("/Managers/" in path for path in related):
        return BMC
    if system is None:
        if any(_is_system(path) for path in related):
            return BIOS
        return item.identity
    if any(path == system for path in related):
        return BIOS
    if not related or any(path.startswith(system + "/") for path in related):
        return item.identity
    return None  # another system's


def _is_system(path: str) -> bool:
    rest = path.removeprefix(SYSTEMS_PATH + "/")
    return rest != path and "/" not in rest


def _component(name: str, item: FirmwareItem) -> FirmwareComponent:
    return FirmwareComponent(name, item.version, vendor=item.manufacturer)


class RedfishFirmware(_RedfishBase, FirmwareInterface):
    """Firmware components and updates through the BMC's UpdateService."""

    name = "redfish"

    def __init__(
        self,
        sessions: RedfishSessions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = time.sleep,
        timeout: float = UPDATE_TIMEOUT,
    ) -> None:
        super().__init__(sessions)
        self._clock = clock
        self._sleep = sleep
        self._timeout = timeout

    def get_components(self, ctx: DriverContext) -> list[FirmwareComponent]:
        """The node's components as the FirmwareInventory shows them.  Raises
        DriverError."""
        return [_component(name, item) for name, item in self._inventory(ctx).items()]

    def _inventory(self, ctx: DriverContext) -> dict[str, FirmwareItem]:
        system = RedfishTarget.from_info(ctx.info(RedfishInfo)).system
        items = self._call(ctx, "read firmware inventory", lambda c, s: c.firmware_inventory())
        return components_of(items, system)

    def check_step_args(self, name: str, args: Mapping[str, Any]) -> None:
        """Raises InvalidInput: ``update``'s settings are malformed."""
        if name == "update":
            parse_settings(args)

    @step(
        priority=0,
        kinds=frozenset({"clean", "service"}),
        argsinfo=STEP_ARGSINFO,
    )
    def update(self, ctx: DriverContext) -> StepOutcome:
        """Update each setting's component from its URL, in order.

        Raises:
            InvalidInput: malformed settings, or a component the node does not have.
            FatalDriverError: the BMC refused an update, or its task failed or timed
                out (the message never holds the URL's credentials).
            DriverError: the BMC did not answer.
        """
        settings = parse_settings(ctx.args)
        before = self._inventory(ctx)
        unknown = sorted({s.component for s in settings} - set(before))
        if unknown:
            raise InvalidInput(
                f"Node {ctx.node.uuid} has no firmware component(s) {', '.join(unknown)}; "
                f"its components: {', '.join(sorted(before)) or 'none'}."
            )
        for setting in settings:
            self._update_one(ctx, setting, before[setting.component])
        after = self._inventory(ctx)
        return StepOutcome(
            firmware=FirmwareChange(
                before=tuple(_component(n, i) for n, i in before.items()),
                after=tuple(_component(n, i) for n, i in after.items()),
                updated=tuple(dict.fromkeys(s.component for s in settings)),
            )
        )

    def _update_one(self, ctx: DriverContext, setting: FirmwareSetting, item: FirmwareItem) -> None:
        shown = display_url(setting.url)
        ctx.logger.info("%s: updating firmware %s from %s", ctx.node.uuid, setting.component, shown)

        def submit(client: RedfishClient, system: str | None) -> str:
            return client.simple_update(setting.url, [item.path])

        try:
            monitor = self._call(ctx, "firmware update", submit, repeatable=False)
            self._follow(ctx, setting.component, monitor)
        except DriverError as exc:
            message = scrub_text(exc.message, [setting.url])
            raise FatalDriverError(
                f"firmware update of {setting.component} from {shown} failed: {message}",
                operation="firmware update",
            ) from None
        if setting.wait:
            self._sleep(setting.wait)

    def _follow(self, ctx: DriverContext, component: str, monitor: str) -> None:
        """Poll the update's task until it is over.  Raises DriverError."""
        deadline = self._clock() + self._timeout
        interval = self._sessions.policy.poll_interval
        while True:
            status = self._call(ctx, "firmware update status", lambda c, s: c.update_task(monitor))
            ctx.progress(StepProgress(STEP_NAME, component, status.percent, status.state))
            if not status.processing:
                _check_ended_well(status)
                return
            if self._clock() >= deadline:
                raise FatalDriverError(
                    f"the BMC's update task was not over after {self._timeout:.0f} s "
                    f"(last state {status.state}, {status.percent}%)",
                    operation="firmware update",
                )
            self._sleep(interval)


def _check_ended_well(status: UpdateTaskStatus) -> None:
    """Raises FatalDriverError: the task ended in failure."""
    failed = status.health == "Critical" or (
        status.state is not None and status.state not in _DONE_STATES
    )
    if failed:
        said = "; ".join(status.messages) or "no message"
        raise FatalDriverError(
            f"the BMC's update task ended {status.state or 'badly'}: {said}",
            operation="firmware update",
        )
