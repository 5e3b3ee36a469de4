"""An upgrade one process at a time (docs/upgrades.md): conductors and API processes of
an older installed version (N, the source of :data:`OLD_VERSION` taken from this
repository's history) and of this one (N+1) on one PostgreSQL database.

The N processes start first and make the schema theirs; a conductor of N+1 joins and
migrates the database to its newer revisions while they run; an N conductor started
after that runs on the newer schema; the nodes driven through their lifecycle over
both API versions are worked on by conductors of both versions, each the one the
hash ring gives them to.  Then the N processes are stopped, as the last step of the
upgrade, and the nodes carry on with N+1 alone.

When this checkout has no git history (an sdist, a shallow clone without that
commit), N cannot be had and the test is skipped, saying so.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from deployment import Deployment

pytestmark = pytest.mark.postgres

#: version N: the last commit before the schema gained revisions after 0005 (events,
#: inspection, inspection rules); keep it a commit whose migrations this version's
#: extend only with expand revisions
#: each API answers at its own newest: version N's history is served at every version
#: up to its maximum (1.60), this version's from 1.78
HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}
OLD_VERSION = "d785fdf66a81c6899aa5287d4856e87ca563a055"
REPO = Path(__file__).resolve().parents[3]
NODES = 18
DEADLINE = 180.0


@pytest.fixture(scope="module")
def old_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``src`` directory of version N, from ``git archive``."""
    git = shutil.which("git")
    if git is None or not (REPO / ".git").exists():
        pytest.skip("version N comes from this repository's git history, and there is none")
    found = subprocess.run(
        [git, "-C", str(REPO), "cat-file", "-e", f"{OLD_VERSION}^{{commit}}"],
        capture_output=True,
    )
    if found.returncode != 0:
        pytest.skip(f"commit {OLD_VERSION[:12]} (version N) is not in this clone's history")
    target = tmp_path_factory.mktemp("version-n")
    archive = target / "src.tar"
    subprocess.run(
        [git, "-C", str(REPO), "archive", "-o", str(archive), OLD_VERSION, "src/metalcast"],
        check=True,
    )
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target / "src"


def _get(url: str, path: str) -> Any:
    response = httpx.get(url + path, headers=HEADERS, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _verb(url: str, uuid: str, target: str) -> None:
    path = f"/v1/nodes/{uuid}/states/provision"
    response = httpx.put(url + path, json={"target": target}, headers=HEADERS, timeout=30)
    assert response.status_code == 202, f"{target} of {uuid}: {response.text}"


def _wait(url: str, uuids: list[str], state: str) -> None:
    fields = "uuid,name,provision_state,last_error,reservation"
    deadline = time.monotonic() + DEADLINE
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = [
            r
            for r in _get(url, f"/v1/nodes?fields={fields}&limit=0")["nodes"]
            if r["uuid"] in uuids
        ]
        failed = [r for r in rows if r["last_error"]]
        assert not failed, failed
        if all(r["provision_state"] == state and r["reservation"] is None for r in rows):
            return
        time.sleep(0.2)
    raise AssertionError(f"not all {state} after {DEADLINE:.0f} s: {rows}")


def _lifecycle(apis: list[str], uuids: list[str]) -> None:
    """manage, provide, deploy and undeploy every node, the verbs spread over ``apis``."""
    for target, rests in (
        ("manage", "manageable"),
        ("provide", "available"),
        ("active", "active"),
        ("deleted", "available"),
    ):
        for index, uuid in enumerate(uuids):
            _verb(apis[index % len(apis)], uuid, target)
        _wait(apis[0], uuids, rests)


def _workers(url: str, uuids: list[str]) -> set[str]:
    """The conductors named in the nodes' history."""
    seen = set()
    for uuid in uuids:
        for event in _get(url, f"/v1/nodes/{uuid}/history?detail=true")["history"]:
            if event.get("conductor"):
                seen.add(event["conductor"])
    return seen


def _revision(database_url: str) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return str(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar())
    finally:
        engine.dispose()


def test_version_n_and_n_plus_1_run_side_by_side(
    postgres_url: str, tmp_path: Path, old_source: Path
) -> None:
    old = {"PYTHONPATH": str(old_source)}
    deploy = Deployment(postgres_url, tmp_path / "state")
    try:
        # version N as it ran before the upgrade: its API process migrates to its head
        deploy.add_api("api-n", env=old)
        deploy.add_conductor("n1", env=old)
        before = _revision(postgres_url)
        # the upgrade starts with one conductor: N+1 migrates while N runs on
        deploy.add_conductor("n-plus-1")
        after = _revision(postgres_url)
        assert after != before, "this version has no newer revision than N: pick a newer N"
        # a process of N starting on the newer schema runs, saying to upgrade
        deploy.add_conductor("n2", env=old)
        assert "upgrade" in deploy.processes["n2"].logs().lower()
        deploy.add_api("api-n-plus-1")
        deploy.wait_conductors({"n1", "n2", "n-plus-1"})
        apis = [deploy.api("api-n-plus-1"), deploy.api("api-n")]

        uuids = []
        for index in range(NODES):
            body = {"name": f"mixed-{index}", "driver": "fake-hardware"}
            response = httpx.post(
                apis[index % 2] + "/v1/nodes", json=body, headers=HEADERS, timeout=30
            )
            assert response.status_code == 201, response.text
            uuids.append(response.json()["uuid"])
        _lifecycle(apis, uuids)
        assert _workers(apis[0], uuids) == {"n1", "n2", "n-plus-1"}, (
            "the ring should give nodes to conductors of both versions"
        )

        # the upgrade ends: N stops, its nodes go to N+1, which runs them alone
        for name in ("n1", "n2", "api-n"):
            deploy.stop(name)
        deploy.wait_conductors({"n-plus-1"})
        _lifecycle([deploy.api("api-n-plus-1")], uuids)
        assert _revision(postgres_url) == after
    finally:
        deploy.close()
