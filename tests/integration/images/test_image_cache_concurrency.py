"""Concurrent fetches of one image, from threads and from processes, download it once.

The server holds its answer until every other fetcher is seen waiting on the image's
lock (in /proc/locks), so the fetches really overlap; then it counts the requests.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from image_http_server import ImageServer, blocked_lock_waiters, wait_until

from metalcast.images.cache import CachedImage, ImageCache, cache_key
from metalcast.images.source import Checksum, parse_image_source

MIB = 1024 * 1024
FETCHERS = 4
SECRET = b"shared-by-every-process"

CHILD = """
import json, sys
from pathlib import Path
from metalcast.images import ImageCache, parse_image_source

cache = ImageCache(Path(sys.argv[1]), 1 << 30, secret=b"shared-by-every-process")
image = cache.fetch(parse_image_source(json.loads(sys.argv[2])))
print(image.raw_sha256)
"""


def serve_gated(server: ImageServer, data: bytes) -> tuple[dict[str, str], str]:
    """Serve ``data`` behind a gate; the instance_info for it and its path."""
    url = server.serve("/big.raw", data)
    return {"image_source": url, "image_checksum": hashlib.sha256(data).hexdigest()}, "/big.raw"


def release_when_all_wait(server: ImageServer, path: str, lock_file: Path) -> None:
    """Answer the first request once the other fetchers all wait for its lock."""
    gate = server.gates[path]
    wait_until(gate.arrived.is_set)
    wait_until(lambda: blocked_lock_waiters(lock_file) == FETCHERS - 1)
    gate.release.set()


def test_threads_download_once(image_server: ImageServer, tmp_path: Path) -> None:
    data = os.urandom(8 * MIB)
    info, path = serve_gated(image_server, data)
    image_server.gate(path)
    cache = ImageCache(tmp_path / "cache", 1 << 30, secret=SECRET)
    source = parse_image_source(info)
    assert isinstance(source.checksum, Checksum)
    key = cache_key(source.url, source.checksum, secret=SECRET)
    results: list[CachedImage] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.fetch(source)))
        for _ in range(FETCHERS)
    ]

    for thread in threads:
        thread.start()
    release_when_all_wait(image_server, path, cache.root / f"{key}.fetch.lock")
    for thread in threads:
        thread.join()

    assert image_server.requests[path] == 1
    assert len(results) == FETCHERS
    assert {r.raw_sha256 for r in results} == {hashlib.sha256(data).hexdigest()}


def test_processes_download_once(image_server: ImageServer, tmp_path: Path) -> None:
    data = os.urandom(8 * MIB)
    info, path = serve_gated(image_server, data)
    image_server.gate(path)
    root = tmp_path / "cache"
    source = parse_image_source(info)
    assert isinstance(source.checksum, Checksum)
    key = cache_key(source.url, source.checksum, secret=SECRET)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root), json.dumps(info)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(FETCHERS)
    ]
    try:
        release_when_all_wait(image_server, path, root / f"{key}.fetch.lock")
        outputs = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()

    assert [child.returncode for child in children] == [0] * FETCHERS, outputs
    assert {out.strip() for out, _ in outputs} == {hashlib.sha256(data).hexdigest()}
    assert image_server.requests[path] == 1
