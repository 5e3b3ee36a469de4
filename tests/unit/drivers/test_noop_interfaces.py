"""No-op implementations: harmless calls do nothing, the others say what to configure."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from metalcast.drivers import noop
from metalcast.drivers.base import DriverContext
from metalcast.errors import FatalDriverError

MakeCtx = Callable[..., DriverContext]

UNSUPPORTED: list[tuple[str, Callable[[DriverContext], object]]] = [
    ("bios", lambda c: noop.NoBIOS().apply_configuration(c)),
    ("console", lambda c: noop.NoConsole().start_console(c)),
    ("console", lambda c: noop.NoConsole().stop_console(c)),
    ("console", lambda c: noop.NoConsole().get_console(c)),
    ("inspect", lambda c: noop.NoInspect().inspect_hardware(c)),
    ("raid", lambda c: noop.NoRAID().create_configuration(c)),
    ("raid", lambda c: noop.NoRAID().delete_configuration(c)),
    ("rescue", lambda c: noop.NoRescue().rescue(c)),
    ("rescue", lambda c: noop.NoRescue().unrescue(c)),
    ("vendor", lambda c: noop.NoVendor().passthru(c, "get_state", {})),
]


@pytest.mark.parametrize(("interface", "call"), UNSUPPORTED)
def test_unsupported_calls_name_the_setting(
    make_ctx: MakeCtx, interface: str, call: Callable[[DriverContext], object]
) -> None:
    with pytest.raises(FatalDriverError) as err:
        call(make_ctx())

    assert err.value.message == (
        f"No {interface} interface is configured for this node; set {interface}_interface"
    )


def test_harmless_calls_do_nothing(make_ctx: MakeCtx) -> None:
    ctx = make_ctx()
    network, storage = noop.NoopNetwork(), noop.NoopStorage()

    network.add_provisioning_network(ctx)
    network.remove_provisioning_network(ctx)
    network.configure_tenant_networks(ctx)
    network.unconfigure_tenant_networks(ctx)
    storage.attach_volumes(ctx)
    storage.detach_volumes(ctx)

    assert noop.NoBIOS().get_settings(ctx) == {}
    assert noop.NoFirmware().get_components(ctx) == []


def test_noop_implementations_validate_and_offer_no_steps(make_ctx: MakeCtx) -> None:
    for cls in (noop.NoBIOS, noop.NoConsole, noop.NoInspect, noop.NoRAID, noop.NoRescue):
        instance = cls()
        instance.validate(make_ctx({"anything": "at all"}))
        assert instance.steps() == []
