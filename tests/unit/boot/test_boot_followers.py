"""A boot supervisor that does not run the services (another process of its network
leads): where its files go, and how it asks the runner to restart dnsmasq.  Nothing
is started: a fake :class:`Leadership` that never leads."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

from metalcast.boot.ipxe import NodeBoot, NodePort
from metalcast.boot.layout import BootLayout
from metalcast.boot.service import BootServices
from metalcast.boot.settings import BootSettings
from metalcast.boot.supervisor import BootSupervisor

NODE = "0b8f3f3e-4b8e-4d51-9a53-8e3f0c1d2a7b"
MAC = "52:54:00:aa:bb:01"


class Follower:
    """Leadership held by someone else."""

    def __init__(self) -> None:
        self.released = 0

    def acquire(self) -> bool:
        return False

    def release(self) -> None:
        self.released += 1


def supervisor(state_dir: Path, **settings: object) -> BootSupervisor:
    services = BootServices(
        BootSettings.model_validate(settings),
        state_dir=state_dir,
        api_url="http://127.0.0.1:6385",
        signer=None,
    )
    return BootSupervisor(services, leadership=Follower(), identity="c2")


def node(address: str | None = None) -> NodeBoot:
    fixed = IPv4Address(address) if address else None
    return NodeBoot(NODE, (NodePort(MAC, fixed),))


def test_each_network_keeps_its_boot_state_in_a_directory_of_its_own(tmp_path: Path) -> None:
    default = BootLayout.from_settings(BootSettings(), state_dir=tmp_path)
    west = BootLayout.from_settings(BootSettings(network="west"), state_dir=tmp_path)

    assert default.state_dir == tmp_path / "boot"
    assert (west.state_dir, west.boot_dir) == (tmp_path / "boot-west", tmp_path / "boot-west/files")
    assert west.images_dir == default.images_dir == tmp_path / "images"


def test_a_follower_writes_its_node_files_where_the_runner_serves_them(tmp_path: Path) -> None:
    follower = supervisor(tmp_path, network="west")
    layout = follower.services.layout

    follower.prepare_node(node())

    assert not follower.running
    assert (layout.hosts_dir / NODE).read_text() == f"{MAC},set:metalcast\n"
    assert (layout.nodes_dir / NODE / "boot.ipxe").exists()
    assert not layout.restart_request.exists()  # a new entry: dnsmasq reads it by itself


def test_a_follower_asks_for_a_restart_when_dnsmasq_must_forget(tmp_path: Path) -> None:
    follower = supervisor(tmp_path, network="west")
    request = follower.services.layout.restart_request

    follower.prepare_node(node())
    follower.prepare_node(node("192.168.77.40"))  # the entry changed
    first = request.read_text()
    follower.clean_node(NODE)  # the entry is gone

    assert first and request.read_text() != first
    follower.clean_node(NODE)  # nothing left to forget: no request
    assert request.read_text() != first


def test_stopping_a_follower_gives_up_its_claim(tmp_path: Path) -> None:
    follower = supervisor(tmp_path)
    follower.stop()
    lock = follower._leadership
    assert isinstance(lock, Follower) and lock.released == 1
