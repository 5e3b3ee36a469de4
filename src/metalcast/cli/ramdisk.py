"""``metalcast ramdisk``: the deploy kernel and initramfs that run metalcast-agent.

``metalcast ramdisk build`` assembles them from Debian packages into
``<state_dir>/ramdisk/`` (where the server looks for them), unless the files there
were built from the same inputs; ``--force`` rebuilds anyway.  Progress goes to
stderr, the result to stdout.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from metalcast.cli.output import print_json, print_ok
from metalcast.config import load_settings
from metalcast.ramdisk.build import RAMDISK_DIR
from metalcast.ramdisk.manifest import RamdiskManifest, read_manifest

app = typer.Typer(help="The deploy ramdisk (kernel + initramfs with metalcast-agent).")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", envvar="METALCAST_CONFIG", help="TOML settings file.", show_default=False
    ),
]


@app.callback()
def ramdisk() -> None:
    """The deploy ramdisk (kernel + initramfs with metalcast-agent)."""


def _progress(line: str) -> None:
    sys.stderr.write(f"ramdisk: {line}\n")
    sys.stderr.flush()


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


@app.command("build")
def build(
    *,
    config: ConfigOpt = None,
    output: Annotated[
        Path | None,
        typer.Option(help="Output directory (default: <state_dir>/ramdisk).", show_default=False),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            help="Downloaded packages (default: <state_dir>/cache/debs).", show_default=False
        ),
    ] = None,
    agent_source: Annotated[
        Path | None,
        typer.Option(
            help="The metalcast_agent package directory (default: the installed one).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if up to date.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Build the deploy kernel and initramfs (a no-op when nothing changed)."""
    from metalcast.ramdisk.build import build_ramdisk

    settings = load_settings(config)
    out_dir = output or settings.state_dir / RAMDISK_DIR
    before = read_manifest(out_dir)
    manifest = build_ramdisk(
        out_dir,
        cache_dir=cache_dir or settings.state_dir / "cache" / "debs",
        force=force,
        progress=_progress,
        agent_source=agent_source,
    )
    if as_json:
        print_json(manifest.as_dict())
    else:
        print_ok(_summary(manifest, out_dir, up_to_date=manifest == before))


def _summary(manifest: RamdiskManifest, out_dir: Path, *, up_to_date: bool) -> str:
    state = "up to date" if up_to_date else "built"
    return (
        f"{state}: {out_dir} (Linux {manifest.kernel_version}, "
        f"inputs {manifest.inputs_hash[:12]})\n"
        f"  {manifest.kernel.name:<18} {_mib(manifest.kernel.size):>9}\n"
        f"  {manifest.initramfs.name:<18} {_mib(manifest.initramfs.size):>9}  "
        f"{len(manifest.modules)} kernel modules, {manifest.python_files} Python files\n"
        f"  built {manifest.built_at} in {manifest.build_seconds:.1f} s"
    )
