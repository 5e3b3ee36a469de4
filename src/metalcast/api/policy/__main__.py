"""``python -m metalcast.api.policy [list|markdown|sample] [POLICY_FILE]``.

``list`` prints every rule in force (the defaults, or those of POLICY_FILE),
``markdown`` the rule tables of docs/policy.md, ``sample`` a commented policy file
(``metalcast policy`` offers the same).
"""

from __future__ import annotations

import sys
from pathlib import Path

from metalcast.api.policy import PolicyFileError, load
from metalcast.api.policy.docs import listing, markdown, sample


def main(argv: list[str]) -> int:
    """Print what ``argv`` asks for; 2 for a wrong command line, 1 for a bad file."""
    command = argv[0] if argv else "list"
    if command not in ("list", "markdown", "sample") or len(argv) > 2:
        sys.stderr.write(__doc__ or "")
        return 2
    try:
        policy = load(Path(argv[1]) if len(argv) > 1 else None)
    except PolicyFileError as exc:
        sys.stderr.write(f"{exc.message}\n")
        return 1
    text = {"list": listing, "markdown": markdown}.get(command)
    sys.stdout.write(text(policy) if text else sample())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
