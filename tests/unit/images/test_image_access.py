"""Which local files and hosts an image source may reach, and who may name them."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import stat
import time
from pathlib import Path

import pytest

from metalcast.config import ImagesSettings, Settings, load_settings
from metalcast.errors import InvalidInput
from metalcast.images.access import (
    AccessRefused,
    AddressGuard,
    LocalFiles,
    internal_kind,
    is_local_source,
    literal_host_reason,
    parse_networks,
)
from metalcast.images.cache import ImageCache, cache_key
from metalcast.images.configdrive import ISO_NAME, ConfigDriveStore
from metalcast.images.download import Fetcher
from metalcast.images.errors import ImageDownloadError
from metalcast.images.source import (
    Checksum,
    ChecksumAlgo,
    ChecksumFile,
    ImageSource,
    parse_checksum_file,
)

SECRET = b"names-key-" * 4


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """A state directory with a secret key, and a directory of images beside it."""
    state, images = tmp_path / "state", tmp_path / "images"
    (state / "images" / "cache").mkdir(parents=True)
    images.mkdir()
    (state / "secret.key").write_bytes(b"the server's fernet key")
    (images / "disk.raw").write_bytes(b"an image")
    return {"state": state, "images": images, "tmp": tmp_path}


def source(path: Path, data: bytes) -> ImageSource:
    return ImageSource(
        path.as_uri(), Checksum(ChecksumAlgo.SHA256, hashlib.sha256(data).hexdigest())
    )


# ----------------------------------------------------------------------- local files


def test_files_inside_a_root_may_be_read(layout: dict[str, Path]) -> None:
    files = LocalFiles(roots=(layout["images"],), private=(layout["state"],))
    assert files.check(layout["images"] / "disk.raw") == layout["images"] / "disk.raw"
    with files.open(layout["images"] / "disk.raw") as handle:
        assert handle.read() == b"an image"


@pytest.mark.parametrize(
    "name",
    [
        "../state/secret.key",  # .. out of the root
        "escape.key",  # a symlink out of the root, into the state directory
        "../outside.raw",  # .. to a file outside every root
        "hop/secret.key",  # a symlinked directory into the state directory
    ],
)
def test_dot_dot_and_symlinks_do_not_escape(layout: dict[str, Path], name: str) -> None:
    (layout["tmp"] / "outside.raw").write_bytes(b"x")
    (layout["images"] / "escape.key").symlink_to(layout["state"] / "secret.key")
    (layout["images"] / "hop").symlink_to(layout["state"])
    files = LocalFiles(roots=(layout["images"],), private=(layout["state"],))
    with pytest.raises(AccessRefused):
        files.check(layout["images"] / name)
    with pytest.raises(AccessRefused):
        files.open(layout["images"] / name).close()


def test_private_paths_win_over_a_root_that_holds_them(layout: dict[str, Path]) -> None:
    # a root configured around the state directory (the settings refuse it; the
    # fetcher does not rely on that)
    files = LocalFiles(roots=(layout["tmp"],), private=(layout["state"],))
    with pytest.raises(AccessRefused, match="never images"):
        files.check(layout["state"] / "secret.key")
    assert files.check(layout["images"] / "disk.raw")


def test_a_symlink_swapped_in_after_the_check_is_caught_on_the_open_file(
    layout: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = layout["images"] / "swapped.raw"
    target.write_bytes(b"innocent")
    files = LocalFiles(roots=(layout["images"],), private=(layout["state"],))
    checked = files.check(target)
    # what an attacker racing the check would do: the name now leads elsewhere
    target.unlink()
    target.symlink_to(layout["state"] / "secret.key")
    monkeypatch.setattr(LocalFiles, "check", _first_call_returns(checked))
    with pytest.raises(AccessRefused, match="never images"):
        files.open(target).close()


def _first_call_returns(value: Path):  # type: ignore[no-untyped-def]
    real = LocalFiles.check
    calls: list[Path] = []

    def check(self: LocalFiles, path: Path) -> Path:
        calls.append(path)
        return value if len(calls) == 1 else real(self, path)

    return check


def test_fifos_and_missing_files_are_refused(layout: dict[str, Path]) -> None:
    os.mkfifo(layout["images"] / "fifo")
    files = LocalFiles(roots=(layout["images"],))
    with pytest.raises(AccessRefused, match="not a regular file"):
        files.open(layout["images"] / "fifo")
    with pytest.raises(AccessRefused, match="no such file"):
        files.open(layout["images"] / "missing.raw")


@pytest.mark.parametrize(
    ("value", "local"),
    [
        ("file:///srv/images/x.raw", True),
        ("FILE:///srv/images/x.raw", True),
        ("/srv/images/x.raw", True),
        ("  /srv/images/x.raw", True),
        ("http://images.example/x.raw", False),
        ("0123abcd" * 8, False),
        (None, False),
        ({"user_data": "x"}, False),
    ],
)
def test_what_counts_as_a_local_source(value: object, local: bool) -> None:
    assert is_local_source(value) is local


# ----------------------------------------------------------- the fetcher's two rules


def test_a_non_administrators_source_is_never_a_local_file(layout: dict[str, Path]) -> None:
    fetcher = Fetcher(file_roots=(layout["images"],)).for_tenant()
    url = (layout["images"] / "disk.raw").as_uri()
    with pytest.raises(ImageDownloadError, match="only system administrators"):
        fetcher.admit(url)
    with pytest.raises(ImageDownloadError, match="only system administrators"):
        fetcher.open(url).__enter__()


def test_a_cached_local_image_is_no_way_around_the_rule(layout: dict[str, Path]) -> None:
    cache = ImageCache(
        layout["state"] / "images" / "cache",
        2**30,
        secret=SECRET,
        fetcher=Fetcher(file_roots=(layout["images"],)),
    )
    image = source(layout["images"] / "disk.raw", b"an image")
    cache.fetch(image)  # an administrator deployed it
    with pytest.raises(ImageDownloadError, match="only system administrators"):
        cache.fetch(image, tenant=True)
    checksum_file = ImageSource(
        "https://203.0.113.7/disk.raw",  # a public address: no DNS, not internal
        ChecksumFile((layout["images"] / "SHA256SUMS").as_uri()),
    )
    with pytest.raises(ImageDownloadError, match="only system administrators"):
        cache.fetch(checksum_file, tenant=True)


def test_the_cache_never_reads_itself(layout: dict[str, Path]) -> None:
    root = layout["images"] / "cache"  # even when a root holds it
    cache = ImageCache(root, 2**30, secret=SECRET, fetcher=Fetcher(file_roots=(layout["images"],)))
    first = cache.fetch(source(layout["images"] / "disk.raw", b"an image"))
    again = ImageSource(first.path.as_uri(), first.checksum)
    with pytest.raises(ImageDownloadError, match="never images"):
        cache.fetch(again)


def test_cache_names_are_keyed_and_files_private(layout: dict[str, Path]) -> None:
    root = layout["state"] / "images" / "cache"
    cache = ImageCache(root, 2**30, secret=SECRET, fetcher=Fetcher(file_roots=(layout["images"],)))
    wanted = source(layout["images"] / "disk.raw", b"an image")
    image = cache.fetch(wanted, holder="node-1")
    assert isinstance(wanted.checksum, Checksum)
    plain = hashlib.sha256(f"{wanted.url}\n{wanted.checksum}".encode()).hexdigest()[:32]
    assert image.key != plain  # what the URL and checksum alone would give
    assert image.key == cache_key(wanted.url, wanted.checksum, secret=SECRET)
    assert image.key != cache_key(wanted.url, wanted.checksum, secret=b"another key")
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    for path in root.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path


def test_config_drives_have_keyed_private_directories(tmp_path: Path) -> None:
    store = ConfigDriveStore(tmp_path / "configdrive", secret=SECRET)
    node = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
    directory = store.directory(node)
    assert node not in str(directory)
    assert directory != ConfigDriveStore(tmp_path / "configdrive", secret=b"x").directory(node)
    assert directory.parent == store.root
    assert store.remove(node) is False
    directory.mkdir(parents=True)
    (directory / ISO_NAME).write_bytes(b"user data")
    assert store.remove(node) is True
    assert list(store.root.iterdir()) == []


def test_a_sweep_spares_the_kept_and_the_ones_made_meanwhile(tmp_path: Path) -> None:
    store = ConfigDriveStore(tmp_path / "configdrive", secret=SECRET)
    kept, stale, fresh = (store.directory(n) for n in ("node-a", "node-b", "node-c"))
    for directory in (kept, stale, fresh):
        directory.mkdir(parents=True)
        (directory / ISO_NAME).write_bytes(b"user data")
    old = time.time() - 60
    for directory in (kept, stale):
        os.utime(directory, (old, old))

    assert store.sweep(keep=["node-a"], older_than=time.time() - 30) == 1

    assert kept.exists() and fresh.exists() and not stale.exists()


def test_a_checksum_file_never_shows_what_it_holds() -> None:
    secret = "gAAAAABkZXJpdmVkLXNlY3JldC1rZXktbWF0ZXJpYWw="
    with pytest.raises(InvalidInput) as caught:
        parse_checksum_file(secret + "\n", filename="secret.key", algo=None)
    assert secret not in caught.value.message
    assert caught.value.message == "the checksum file is unusable: its one line holds no hex digest"


# --------------------------------------------------------------------- internal hosts


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("10.1.2.3", None),
        ("192.168.77.10", None),
        ("203.0.113.7", None),
        ("2001:db8::1", None),
    ],
)
def test_internal_addresses(address: str, kind: str | None) -> None:
    assert internal_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:6385/v1/nodes",
        "http://LOCALHOST./x",
        "http://api.localhost/x",
        "http://127.0.0.1:8080/images/cache/x.raw",
        "https://[::1]/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:6385/",
        "http://[fe80::1%25eth0]/x",
    ],
)
def test_loopback_names_and_internal_literals_are_refused_without_dns(url: str) -> None:
    reason = literal_host_reason(url, ())
    assert reason is not None and "may not reach loopback, link-local" in reason


def test_names_and_public_literals_are_left_to_the_fetch() -> None:
    assert literal_host_reason("https://images.example/x.raw", ()) is None
    assert literal_host_reason("http://203.0.113.7/x.raw", ()) is None
    assert literal_host_reason("not a url at all", ()) is None


def test_an_administrator_can_allow_internal_networks() -> None:
    allowed = parse_networks(["127.0.0.0/8"])
    assert literal_host_reason("http://127.0.0.1:8000/x", allowed) is None
    assert literal_host_reason("http://169.254.169.254/", allowed) is not None
    assert AddressGuard(allowed).resolve("127.0.0.1", 80) == ["127.0.0.1"]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "169.254.169.254", "::1"])
def test_the_guard_checks_what_a_name_resolves_to(host: str) -> None:
    with pytest.raises(AccessRefused, match="may not reach loopback"):
        AddressGuard().resolve(host, 80)


# -------------------------------------------------------------------------- settings


def test_file_roots_may_not_hold_or_lie_in_private_paths(tmp_path: Path) -> None:
    state = tmp_path / "state"
    for root in (tmp_path, state, state / "images", state / "lab"):
        with pytest.raises(ValueError, match="overlaps"):
            Settings(state_dir=state, images=ImagesSettings(file_roots=(root,)))
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="overlaps"):
        Settings(
            state_dir=state,
            images=ImagesSettings(cache_dir=cache, file_roots=(cache / "cache",)),
        )
    database = tmp_path / "db" / "metalcast.sqlite"
    with pytest.raises(ValueError, match="overlaps"):
        Settings(
            state_dir=state,
            database={"url": f"sqlite:///{database}"},  # type: ignore[arg-type]
            images=ImagesSettings(file_roots=(database.parent,)),
        )
    fine = Settings(state_dir=state, images=ImagesSettings(file_roots=(tmp_path / "images",)))
    assert fine.images.file_roots == (tmp_path / "images",)


def test_a_symlinked_root_into_the_state_directory_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "innocent").symlink_to(state)
    with pytest.raises(ValueError, match="overlaps"):
        Settings(state_dir=state, images=ImagesSettings(file_roots=(tmp_path / "innocent",)))


def test_file_roots_and_networks_from_the_environment(tmp_path: Path) -> None:
    environ = {
        "METALCAST_STATE_DIR": str(tmp_path / "state"),
        "METALCAST_IMAGES__FILE_ROOTS": f"{tmp_path}/a, {tmp_path}/b",
        "METALCAST_IMAGES__ALLOWED_INTERNAL_NETWORKS": '["127.0.0.1/32"]',
    }
    settings = load_settings(environ=environ)
    assert settings.images.file_roots == (tmp_path / "a", tmp_path / "b")
    assert settings.images.allowed_internal_networks == ("127.0.0.1/32",)
    with pytest.raises(InvalidInput, match="overlaps"):
        load_settings(environ={**environ, "METALCAST_IMAGES__FILE_ROOTS": str(tmp_path)})
    with pytest.raises(InvalidInput, match="absolute"):
        load_settings(environ={**environ, "METALCAST_IMAGES__FILE_ROOTS": "relative/dir"})
    with pytest.raises(InvalidInput, match="not an IP network"):
        load_settings(environ={**environ, "METALCAST_IMAGES__ALLOWED_INTERNAL_NETWORKS": "lan"})
