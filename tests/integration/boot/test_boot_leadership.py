"""Two processes' boot supervisors on one provisioning network, elected by a
PostgreSQL advisory lock (:mod:`metalcast.db.leadership`), with real dnsmasq in a
network namespace and busybox's DHCP client in another: one runs the services, the
other writes its nodes' files into the shared boot directory and they are served; a
host entry it changes is served once the runner restarts dnsmasq on its request; when
the runner loses the lock (its session ended, as when its process dies) it stops and
the other takes over on the same address.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import psycopg
import pytest
from boot_netlab import CLIENT_MAC, SIGNER, BootLab, StubApi, boot_settings

from metalcast.boot.ipxe import NodeBoot, NodePort
from metalcast.boot.service import BootServices
from metalcast.boot.supervisor import BootSupervisor
from metalcast.db.engine import Database
from metalcast.db.leadership import SessionLock

pytestmark = pytest.mark.postgres

NODE = "6f1d8c2e-0d6a-4c8e-9a51-2b1f0e7c3a10"


def node_at(address: str) -> NodeBoot:
    return NodeBoot(NODE, (NodePort(CLIENT_MAC, IPv4Address(address)),))


@pytest.fixture
def pair(
    boot_lab: BootLab, stub_api: StubApi, state_dir: Path, postgres_url: str
) -> Iterator[tuple[BootSupervisor, BootSupervisor]]:
    """Supervisors "a" and "b" of network "t" on the lab's bridge, one state directory."""
    db = Database(postgres_url)
    supervisors = []
    for name in ("a", "b"):
        services = BootServices(
            boot_settings(boot_lab, network="t"),
            state_dir=state_dir,
            api_url=stub_api.url,
            signer=SIGNER,
        )
        lock = SessionLock(db, name="boot:t", identity=name)
        supervisors.append(BootSupervisor(services, leadership=lock, identity=name))
    try:
        yield supervisors[0], supervisors[1]
    finally:
        for supervisor in supervisors:
            supervisor.stop()
        db.dispose()


def test_one_runs_the_services_the_other_files_are_served_and_it_takes_over(
    pair: tuple[BootSupervisor, BootSupervisor], boot_lab: BootLab, state_dir: Path
) -> None:
    a, b = pair
    a.check_once()
    b.check_once()
    assert (a.running, b.running) == (True, False)
    leader = json.loads((state_dir / "boot-t" / "leader.json").read_text())
    assert (leader["identity"], leader["interface"]) == ("a", "br0")

    b.prepare_node(node_at("192.168.77.31"))  # new entry: dnsmasq reads it by itself
    assert boot_lab.udhcpc(tries=4) == "192.168.77.31"

    b.prepare_node(node_at("192.168.77.32"))  # changed: needs a restart, asked of a
    a.check_once()
    assert boot_lab.udhcpc(tries=4) == "192.168.77.32"

    end_session(a)  # what the death of a's process does to its lock
    a.check_once()
    assert not a.running
    b.check_once()
    assert b.running
    assert json.loads((state_dir / "boot-t" / "leader.json").read_text())["identity"] == "b"
    assert boot_lab.udhcpc(tries=4) == "192.168.77.32"


def end_session(supervisor: BootSupervisor) -> None:
    lock = supervisor._leadership
    assert isinstance(lock, SessionLock)
    url = lock._engine.url.set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        ended = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            ("metalcast boot:t a",),
        ).fetchall()
    assert ended == [(True,)]
