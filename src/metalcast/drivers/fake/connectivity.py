"""Fake network and storage: attachments that always succeed."""

from __future__ import annotations

from metalcast.drivers.base import DriverContext, NetworkInterface, StorageInterface
from metalcast.drivers.fake.injection import FakeOperations


class FakeNetwork(FakeOperations, NetworkInterface):
    """Network switching that does nothing but the injected latency."""

    name = "fake"

    def add_provisioning_network(self, ctx: DriverContext) -> None:
        self._begin(ctx)

    def remove_provisioning_network(self, ctx: DriverContext) -> None:
        self._begin(ctx)

    def configure_tenant_networks(self, ctx: DriverContext) -> None:
        self._begin(ctx)

    def unconfigure_tenant_networks(self, ctx: DriverContext) -> None:
        self._begin(ctx)


class FakeStorage(FakeOperations, StorageInterface):
    """Volume attachment that does nothing but the injected latency."""

    name = "fake"

    def attach_volumes(self, ctx: DriverContext) -> None:
        self._begin(ctx)

    def detach_volumes(self, ctx: DriverContext) -> None:
        self._begin(ctx)
