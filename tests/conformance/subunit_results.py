"""Read a subunit v2 stream on stdin, write one JSON line per test on stdout.

Each line is ``{"id": ..., "status": ..., "reason": ...}``: the test id as stestr
names it (with its ``[id-...]`` attributes), its status (``success``, ``fail``,
``skip``, ``xfail``, ``uxsuccess``) and, for anything but a success, the traceback or
skip reason.  Run by tests/conformance/runner.py with the conformance virtualenv's
Python, which has python-subunit and testtools (the project's does not).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import subunit  # type: ignore[import-not-found]
import testtools  # type: ignore[import-not-found]

#: where testtools keeps why a test did not pass, most telling first
REASON_KEYS = ("traceback", "reason")


def emit(test: dict[str, Any]) -> None:
    """Write one finished test as a JSON line."""
    details = test["details"]
    reason = next((details[key].as_text() for key in REASON_KEYS if key in details), "")
    line = {"id": test["id"], "status": test["status"], "reason": reason}
    sys.stdout.write(json.dumps(line) + "\n")


def main() -> None:
    stream = subunit.ByteStreamToStreamResult(sys.stdin.buffer, non_subunit_name="stdout")
    result = testtools.StreamToDict(emit)
    result.startTestRun()
    try:
        stream.run(result)
    finally:
        result.stopTestRun()


if __name__ == "__main__":
    main()
