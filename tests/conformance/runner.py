"""ironic-tempest-plugin's API tests against a throwaway metalcast: the conformance run.

Starts ``metalcast server`` (noauth, SQLite, no boot services) on a free 127.0.0.1
port in a temporary state directory, a fake Keystone (tests/support/fake_keystone.py)
that hands tempest a token whose catalog points ``baremetal`` at it, and runs the
plugin's API tests serially with the tempest of a virtualenv of its own (made by
scripts/conformance from tests/conformance/requirements.txt).  Prints
``passed N failed M skipped K of T``, then compares the failures with
tests/conformance/known-failures.txt.

Exit status: 0 when exactly the listed tests fail; 1 when a test fails that is not
listed (a regression) or a listed test no longer fails (the list must shrink);
2 when the run itself did not work (the server did not start, no test ran).
Every process and the temporary directory are removed on the way out, on Ctrl-C and
SIGTERM too (``--keep`` keeps the directory: logs, the tempest workspace, the state).

Run it through scripts/conformance, which makes the virtualenv first.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "support"))

from fake_keystone import running_keystone  # noqa: E402 (after the path above)
from server_process import free_port, server_command  # noqa: E402

DEFAULT_REGEX = r"^ironic_tempest_plugin\.tests\.api\."
KNOWN_FAILURES = HERE / "known-failures.txt"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
PROGRESS_EVERY = 30.0
#: a test line of tempest's output: "{0} ironic_tempest_plugin.tests... ... ok"
TEST_LINE = re.compile(r"^\{\d+\} \S")

EXIT_OK, EXIT_DIVERGED, EXIT_BROKEN = 0, 1, 2


class RunBroken(Exception):
    """The conformance run could not produce results (not a test failure)."""


@dataclass(frozen=True)
class Options:
    venv: Path
    regex: str
    known_failures: Path
    keep: bool


@dataclass(frozen=True)
class TestResult:
    id: str
    status: str
    reason: str

    @property
    def name(self) -> str:
        """The id without tempest's ``[id-…,negative]`` attributes."""
        return test_name(self.id)

    @property
    def failed(self) -> bool:
        return self.status in ("fail", "uxsuccess")


def test_name(test_id: str) -> str:
    """A test id without its trailing ``[...]`` attributes."""
    return re.sub(r"\[[^\]]*\]$", "", test_id.strip())


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(prog="scripts/conformance", description=__doc__.split("\n")[0])
    parser.add_argument("--venv", type=Path, required=True, help="the tempest virtualenv")
    parser.add_argument("--regex", default=DEFAULT_REGEX, help="which tests (tempest --regex)")
    parser.add_argument("--known-failures", type=Path, default=KNOWN_FAILURES)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    return Options(args.venv, args.regex, args.known_failures, args.keep)


def load_known_failures(path: Path) -> dict[str, str]:
    """The listed tests and why each fails: ``test id  # why`` per line.

    Raises:
        RunBroken: a line has no reason, or a test is listed twice.
    """
    known: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        test, _, why = line.partition("#")
        if not why.strip():
            raise RunBroken(f"{path}:{number}: say why the test fails, after a '#'")
        if test_name(test) in known:
            raise RunBroken(f"{path}:{number}: {test_name(test)} is listed twice")
        known[test_name(test)] = why.strip()
    return known


# --- processes ---------------------------------------------------------------


def _stop(process: subprocess.Popen[bytes], *, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the process's group (it leads a session of its own), SIGKILL after
    ``timeout``."""
    if process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METALCAST_")}
    env["METALCAST_API__AUTH_STRATEGY"] = "noauth"
    # no dnsmasq, TFTP or boot HTTP server: the API tests boot nothing
    env["METALCAST_BOOT__ENABLED"] = "false"
    return env


def _wait_until_ready(process: subprocess.Popen[bytes], url: str, *, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RunBroken(f"metalcast server exited with {process.returncode}:\n{_tail(log)}")
        with suppress(OSError), urllib.request.urlopen(f"{url}/v1", timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.2)
    raise RunBroken(f"metalcast server did not answer within {START_TIMEOUT:g}s:\n{_tail(log)}")


@contextmanager
def running_metalcast(workdir: Path) -> Iterator[str]:
    """A ``metalcast server`` on a free loopback port, state in ``workdir/state``;
    yields its URL once ``GET /v1`` answers, SIGTERMs it on exit."""
    state_dir, log = workdir / "state", workdir / "server.log"
    state_dir.mkdir()
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            server_command(port=port, state_dir=state_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_server_env(),
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_ready(process, url, log=log)
        yield url
    finally:
        _stop(process)


def _tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


# --- tempest -----------------------------------------------------------------


def write_workspace(workspace: Path, *, keystone_url: str) -> Path:
    """tempest's configuration and accounts in ``workspace/etc``; returns the
    configuration file."""
    etc = workspace / "etc"
    etc.mkdir(parents=True)
    (workspace / "logs").mkdir()
    conf = (HERE / "tempest.conf.in").read_text()
    conf = conf.replace("@WORKSPACE@", str(workspace)).replace("@KEYSTONE_URL@", keystone_url)
    (etc / "tempest.conf").write_text(conf)
    shutil.copy(HERE / "accounts.yaml", etc / "accounts.yaml")
    return etc / "tempest.conf"


def run_tempest(workspace: Path, *, venv: Path, config: Path, regex: str) -> None:
    """``tempest run --serial`` in ``workspace``, its output in ``run.log``, with a
    line of progress every half minute."""
    log = workspace / "run.log"
    command = [str(venv / "bin" / "tempest"), "run", "--config-file", str(config),
               "--regex", regex, "--serial"]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=workspace, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        while True:
            try:
                process.wait(timeout=PROGRESS_EVERY)
                return
            except subprocess.TimeoutExpired:
                done = sum(1 for line in log.read_text(errors="replace").splitlines()
                           if TEST_LINE.match(line))  # fmt: skip
                print(f"conformance: {done} tests run so far", flush=True)
    finally:
        _stop(process, timeout=10)


def read_results(workspace: Path, *, venv: Path) -> list[TestResult]:
    """The last run's results, read from stestr's subunit stream.

    Raises:
        RunBroken: no test ran (tempest's log says why).
    """
    stream = subprocess.run(
        [str(venv / "bin" / "stestr"), "last", "--subunit"],
        cwd=workspace, capture_output=True, check=False,
    ).stdout  # fmt: skip
    parsed = subprocess.run(
        [str(venv / "bin" / "python"), str(HERE / "subunit_results.py")],
        input=stream, capture_output=True, check=False,
    )  # fmt: skip
    results = [TestResult(**json.loads(line)) for line in parsed.stdout.splitlines() if line]
    if not results:
        problem = parsed.stderr.decode(errors="replace").strip()
        raise RunBroken(
            f"no test result (reading them: {problem or 'no error'}); tempest said:\n"
            + _tail(workspace / "run.log")
        )
    return results


# --- verdict -----------------------------------------------------------------


def summary(results: Sequence[TestResult]) -> str:
    """``passed N failed M skipped K of T``, counted as the team's harness does
    (a class skipped as a whole is one test)."""
    counts = collections.Counter(
        "failed" if r.failed else "skipped" if r.status == "skip" else "passed" for r in results
    )
    return (
        f"passed {counts['passed']} failed {counts['failed']} "
        f"skipped {counts['skipped']} of {len(results)}"
    )


#: the line of a traceback that names the exception ("AssertionError: ...")
EXCEPTION_LINE = re.compile(r"^(?!Details:)[A-Za-z_][\w.]*: ")


def last_line(reason: str) -> str:
    """What a traceback ends with: its last exception line and what follows it
    (tempest puts the server's answer on a ``Details:`` line of its own)."""
    lines = [line.strip() for line in reason.splitlines() if line.strip()]
    starts = [i for i, line in enumerate(lines) if EXCEPTION_LINE.match(line)]
    said = " ".join(lines[starts[-1] :] if starts else lines[-1:])
    return said[:500] or "(no traceback)"


@dataclass(frozen=True)
class Verdict:
    unexpected: list[TestResult]
    fixed: list[str]
    missing: list[str]

    @property
    def clean(self) -> bool:
        return not (self.unexpected or self.fixed or self.missing)


def judge(results: Sequence[TestResult], known: dict[str, str], *, full_run: bool) -> Verdict:
    """Failures not listed, listed tests that ran and did not fail, and (on a full
    run) listed tests that did not run at all."""
    ran = {r.name: r for r in results}
    unexpected = [r for r in results if r.failed and r.name not in known]
    fixed = [name for name in known if name in ran and not ran[name].failed]
    missing = [name for name in known if name not in ran] if full_run else []
    return Verdict(unexpected, fixed, missing)


def report(verdict: Verdict, *, known_path: Path, known: dict[str, str]) -> None:
    if verdict.unexpected:
        print(f"\nFAILED and not in {known_path}: a regression in Ironic compatibility.")
        for result in verdict.unexpected:
            print(f"  {result.name}\n      {last_line(result.reason)}")
        print("Fix metalcast so that these pass. Only a deliberate divergence goes into the")
        print("known-failures list, with a comment saying why and which issue covers it.")
    if verdict.fixed:
        print(f"\nPASSING NOW but listed in {known_path}: remove these lines from it.")
        for name in verdict.fixed:
            print(f"  {name}    # was: {known[name]}")
    if verdict.missing:
        print(f"\nLISTED in {known_path} but not run (renamed or removed in the plugin?):")
        print("  " + "\n  ".join(verdict.missing))
    if verdict.clean:
        print(f"conformance: as expected ({len(known)} known failures, {known_path})")


def conformance(options: Options) -> int:
    known = load_known_failures(options.known_failures)
    workdir = Path(tempfile.mkdtemp(prefix="metalcast-conformance-"))
    try:
        with running_metalcast(workdir) as url, running_keystone(baremetal_url=url) as keystone:
            workspace = workdir / "tempest"
            config = write_workspace(workspace, keystone_url=keystone.url)
            print(f"conformance: ironic-tempest-plugin against metalcast at {url}", flush=True)
            started = time.monotonic()
            run_tempest(workspace, venv=options.venv, config=config, regex=options.regex)
            results = read_results(workspace, venv=options.venv)
        print(f"{summary(results)}  ({time.monotonic() - started:.0f} s)")
        verdict = judge(results, known, full_run=options.regex == DEFAULT_REGEX)
        report(verdict, known_path=options.known_failures, known=known)
        return EXIT_OK if verdict.clean else EXIT_DIVERGED
    finally:
        if options.keep:
            print(f"conformance: kept {workdir} (server.log, tempest/run.log, state/)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


class Stopped(Exception):
    """SIGINT or SIGTERM arrived: stop everything and leave."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    # once is enough: a second Ctrl-C must not interrupt the cleanup it started
    for name in (signal.SIGINT, signal.SIGTERM):
        signal.signal(name, signal.SIG_IGN)
    raise Stopped(signum)


def main(argv: Sequence[str] | None = None) -> int:
    # also when started in the background, where SIGINT comes ignored
    for name in (signal.SIGINT, signal.SIGTERM):
        signal.signal(name, _stop_on_signal)
    options = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return conformance(options)
    except RunBroken as exc:
        print(f"conformance: the run did not work: {exc}", file=sys.stderr)
        return EXIT_BROKEN
    except Stopped as exc:
        print(f"conformance: {exc}: stopped everything it started", file=sys.stderr)
        return 128 + exc.signum


if __name__ == "__main__":
    sys.exit(main())
