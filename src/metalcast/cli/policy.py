"""``metalcast policy``: the access rules the API enforces (docs/policy.md).

``metalcast policy list`` prints every rule in force: the defaults, overridden by
``api.policy_file`` (from ``--config`` or ``METALCAST_API__POLICY_FILE``) or by
``--policy-file``; ``--markdown`` prints the rule tables of docs/policy.md instead.
``metalcast policy sample`` prints a policy file with every rule commented out at its
default, to start one from.  A policy file that would not load is an error here
too, with the message the server would refuse to start with.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from metalcast.config import load_settings

app = typer.Typer(help="The access rules the API enforces (docs/policy.md).")


@app.callback()
def policy() -> None:
    """The access rules the API enforces (docs/policy.md)."""


@app.command("list")
def list_rules(
    *,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", envvar="METALCAST_CONFIG", help="TOML settings file.", show_default=False
        ),
    ] = None,
    policy_file: Annotated[
        Path | None,
        typer.Option(help="A policy file (default: api.policy_file).", show_default=False),
    ] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="The rule tables of docs/policy.md.")
    ] = False,
) -> None:
    """Print every rule in force, with its check string."""
    from metalcast.api.policy import load
    from metalcast.api.policy.docs import listing
    from metalcast.api.policy.docs import markdown as tables

    chosen = policy_file or load_settings(config).api.policy_file
    rules = load(chosen)
    sys.stdout.write(tables(rules) if markdown else listing(rules))


@app.command()
def sample() -> None:
    """Print a policy file with every rule at its default, commented out."""
    from metalcast.api.policy.docs import sample as sample_file

    sys.stdout.write(sample_file())
