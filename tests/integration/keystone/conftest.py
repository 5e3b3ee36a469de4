"""One real Keystone per test session, its personas, and a metalcast that trusts it.

Fixtures (all session-scoped, so Keystone is bootstrapped once):

``keystone``            a :class:`keystonelab.Keystone` on a free loopback port
``tenancy``             :data:`keystonelab.PERSONAS` made in it (``tenancy.project_ids``)
``keystone_metalcast``  a ``metalcast server`` with ``api.auth_strategy = keystone``
                        against it, registered as the baremetal service in its catalog

Every test here is marked ``keystone`` (select them with ``-m keystone``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from keystonelab import (
    Keystone,
    Tenancy,
    create_personas,
    metalcast_env,
    register_baremetal,
    running_keystone,
)

StartServer = Callable[..., contextlib.AbstractContextManager[Any]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.keystone)


@pytest.fixture(scope="session")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystone]:
    """A bootstrapped Keystone, stopped at the end of the session."""
    with running_keystone(tmp_path_factory.mktemp("keystone")) as running:
        yield running


@pytest.fixture(scope="session")
def tenancy(keystone: Keystone) -> Tenancy:
    """The projects and personas of :mod:`keystonelab`, made in ``keystone``."""
    return create_personas(keystone)


@pytest.fixture(scope="session")
def keystone_metalcast(
    keystone: Keystone, tenancy: Tenancy, start_metalcast_server: StartServer
) -> Iterator[Any]:
    """A ``metalcast server`` validating tokens with ``keystone``, in its catalog."""
    with start_metalcast_server(env=metalcast_env(keystone)) as server:
        register_baremetal(keystone, server.url)
        yield server
