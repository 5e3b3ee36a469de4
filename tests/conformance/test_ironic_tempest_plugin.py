"""Ironic API conformance in the test suite: ``scripts/conformance`` as one test.

ironic-tempest-plugin's API tests run against a throwaway ``metalcast server`` of
this checkout (tests/conformance/runner.py); the test fails when one fails that
tests/conformance/known-failures.txt does not list, or a listed one passes now, with
the script's report as the message.  About a minute, plus one the first time to make
the tempest virtualenv (``scripts/install --test`` makes it beforehand).

Marked ``conformance``: ``pytest -m "not conformance"`` leaves it out,
``pytest -m conformance`` runs only it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: the run takes about a minute on two busy cores; installing tempest another
RUN_TIMEOUT = 900
#: what the runner may take to stop the server and tempest after SIGTERM
STOP_TIMEOUT = 120

pytestmark = [pytest.mark.conformance, pytest.mark.integration]


def run_conformance() -> tuple[int, str]:
    """Run scripts/conformance with this interpreter; its exit status and output.
    Stopped with SIGTERM (which it cleans up after) if this test is interrupted."""
    env = {**os.environ, "METALCAST_PYTHON": sys.executable}
    process = subprocess.Popen(
        ["bash", str(ROOT / "scripts" / "conformance")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        output, _ = process.communicate(timeout=RUN_TIMEOUT)
    finally:
        if process.poll() is None:
            process.terminate()
            process.communicate(timeout=STOP_TIMEOUT)
    return process.returncode, output.decode(errors="replace")


@pytest.mark.timeout(RUN_TIMEOUT + STOP_TIMEOUT + 60)
def test_ironic_tempest_plugin_api_tests(capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run_conformance()
    assert code == 0, f"scripts/conformance exited with {code}:\n{output}"
    summary = next((line for line in output.splitlines() if line.startswith("passed ")), "")
    with capsys.disabled():
        print(f"\nironic-tempest-plugin: {summary}")
