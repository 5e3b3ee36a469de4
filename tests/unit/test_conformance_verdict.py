"""The conformance run's verdict (tests/conformance/runner.py): which failures are
regressions, which listed tests pass now, and how the known-failures list is read."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

RUNNER = Path(__file__).resolve().parents[1] / "conformance" / "runner.py"


def _load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("conformance_runner", RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


runner = _load_runner()
NODES = "ironic_tempest_plugin.tests.api.admin.test_nodes.TestNodes"


def result(name: str, status: str) -> object:
    return runner.TestResult(f"{NODES}.{name}[id-1234,negative]", status, "")


def test_a_failure_not_listed_is_unexpected_and_a_listed_pass_is_fixed() -> None:
    results = [result("test_a", "fail"), result("test_b", "success"), result("test_c", "fail")]
    known = {f"{NODES}.test_b": "why", f"{NODES}.test_c": "why"}

    verdict = runner.judge(results, known, full_run=True)

    assert [r.name for r in verdict.unexpected] == [f"{NODES}.test_a"]
    assert verdict.fixed == [f"{NODES}.test_b"]
    assert not verdict.clean


def test_listed_tests_that_did_not_run_count_only_on_a_full_run() -> None:
    known = {f"{NODES}.test_gone": "why"}
    results = [result("test_a", "success")]

    assert runner.judge(results, known, full_run=True).missing == [f"{NODES}.test_gone"]
    assert runner.judge(results, known, full_run=False).clean


def test_known_failures_need_a_reason(tmp_path: Path) -> None:
    listed = tmp_path / "known.txt"
    listed.write_text(f"# a comment\n\n{NODES}.test_a  # Ironic 400, metalcast 200\n")
    assert runner.load_known_failures(listed) == {f"{NODES}.test_a": "Ironic 400, metalcast 200"}

    listed.write_text(f"{NODES}.test_a\n")
    with pytest.raises(runner.RunBroken, match="say why"):
        runner.load_known_failures(listed)


def test_summary_counts_like_the_teams_harness() -> None:
    results = [result("a", "success"), result("b", "fail"), result("c", "skip")]
    assert runner.summary(results) == "passed 1 failed 1 skipped 1 of 3"


def test_the_reason_shown_is_the_exception_and_the_servers_answer() -> None:
    traceback = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n'
        "tempest.lib.exceptions.NotFound: Object not found\n"
        "Details: {'error_message': 'gone'}\n"
    )
    shown = runner.last_line(traceback)
    assert (
        shown
        == "tempest.lib.exceptions.NotFound: Object not found Details: {'error_message': 'gone'}"
    )
