"""The deploy ramdisks the lab tests build, importable by name (a ``conftest`` is not:
several directories have one, and the first imported takes the name)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from metalcast.ramdisk import RamdiskManifest, build_ramdisk

FAKE_AGENT = Path(__file__).parent / "fake_agent" / "metalcast_agent"


@dataclass(frozen=True)
class BuiltRamdisk:
    out_dir: Path
    manifest: RamdiskManifest
    progress: list[str]

    @property
    def kernel(self) -> Path:
        return self.out_dir / self.manifest.kernel.name

    @property
    def initramfs(self) -> Path:
        return self.out_dir / self.manifest.initramfs.name


def build(out_dir: Path, cache: Path, agent_source: Path | None) -> BuiltRamdisk:
    lines: list[str] = []
    manifest = build_ramdisk(
        out_dir, cache_dir=cache, progress=lines.append, agent_source=agent_source
    )
    return BuiltRamdisk(out_dir, manifest, lines)
