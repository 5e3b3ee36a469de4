"""A slim Python for the ramdisk: Debian's python3.11 and only the stdlib the agent uses.

The interpreter, the standard library and the C libraries all come from Debian
packages (``python3.11-minimal``, ``libpython3.11-minimal``, ``libpython3.11-stdlib``,
``libc6``, ``zlib1g``, ``libexpat1``, ``libssl3``), never from the build host, so the
ramdisk does not depend on what Python the host runs.  ``libssl3`` is there for
``hashlib``: with OpenSSL's libcrypto it hashes images 1.2 times (sha256) to 1.6 times (sha512)
faster under QEMU's TCG than with the builtin ``_sha256``/``_sha512``, and releases the
GIL while it does, so the agent's hashing thread runs beside its reader and writer.

Which modules the agent needs is found by running that very interpreter (through the
packaged ``ld.so``, with the packaged libraries) with ``-I -S``, importing the agent's
modules and every module its source imports anywhere (also inside functions), and
listing ``sys.modules``.  Extension modules whose libraries are not in the packages
(say, ``_sqlite3``) are made unimportable during that probe, exactly as they will
be in the ramdisk.  Imports the standard library makes lazily at run time are not
seen; :data:`EXTRA_MODULES` lists the ones the agent's paths are known to need (codecs
looked up by name).  Everything is compiled to ``.pyc`` (unchecked-hash: the ramdisk is
read-only in spirit and mtimes are meaningless in it).
"""

from __future__ import annotations

import ast
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from metalcast.ramdisk import elf
from metalcast.ramdisk.commands import run_tool
from metalcast.ramdisk.errors import RamdiskError

PACKAGES = (
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libc6",
    "zlib1g",
    "libexpat1",
    "libssl3",
)
PYTHON = "usr/bin/python3.11"
STDLIB = "usr/lib/python3.11"
LIBRARY_DIRS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu")
AGENT_PACKAGE = "metalcast_agent"
#: imported by name at run time, so no import statement reveals them
EXTRA_MODULES = (
    "runpy",
    "encodings.aliases",
    "encodings.ascii",
    "encodings.latin_1",
    "encodings.utf_8",
    "encodings.utf_8_sig",
    "encodings.utf_16",
    "encodings.utf_32",
    "encodings.idna",
    "encodings.raw_unicode_escape",
    "encodings.unicode_escape",
)
#: the stdlib ships as ``.pyc`` only (the agent keeps its ``.py`` for tracebacks)
STDLIB_SOURCELESS = True

_PROBE = """
import sys
blocked = set(sys.argv[1].split(",")) - {""}
class Blocker:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name in blocked:
            raise ModuleNotFoundError(f"{name}: its libraries are not in the ramdisk")
        return None
sys.meta_path.insert(0, Blocker)
for name in sys.argv[2:]:
    try:
        __import__(name)
    except BaseException as exc:
        print("!" + name, type(exc).__name__ + ": " + str(exc), sep="\\t")
for name, module in sorted(sys.modules.items()):
    path = getattr(module, "__file__", None)
    if path:
        print(name, path, sep="\\t")
"""


@dataclass(frozen=True, slots=True)
class PythonRoot:
    """The unpacked python packages merged into one tree, runnable on the build host."""

    root: Path

    @property
    def stdlib(self) -> Path:
        return self.root / STDLIB

    def run(self, args: Sequence[str | Path], *, what: str) -> bytes:
        """Run the packaged interpreter with the packaged ``ld.so`` and libraries.

        Raises:
            RamdiskError: it exited non-zero.
        """
        loader = self.root / LIBRARY_DIRS[0] / "ld-linux-x86-64.so.2"
        library_path = ":".join(str(self.root / d) for d in LIBRARY_DIRS)
        return run_tool(
            [loader, "--library-path", library_path, self.root / PYTHON, "-I", "-S", *args],
            what=what,
            env={"LC_ALL": "C", "LANG": "C"},
        )


def merge_trees(trees: Iterable[Path], into: Path) -> PythonRoot:
    """Merge unpacked packages into one tree (hard links where the filesystem allows)."""
    for tree in trees:
        shutil.copytree(tree, into, symlinks=True, dirs_exist_ok=True, copy_function=_link)
    return PythonRoot(into)


def _link(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def copy_agent(agent_dir: Path, stdlib: Path) -> Path:
    """Copy the agent package (without bytecode) into a stdlib directory."""
    target = stdlib / AGENT_PACKAGE
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(agent_dir, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


def agent_modules(agent_dir: Path) -> list[str]:
    """The agent's own module names, except ``__main__`` (importing it would start
    the agent)."""
    names = []
    for path in sorted(agent_dir.rglob("*.py")):
        parts = [AGENT_PACKAGE, *path.relative_to(agent_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        if parts[-1] != "__main__":
            names.append(".".join(parts))
    return names


def source_imports(agent_dir: Path) -> list[str]:
    """Every absolute module name the agent's source imports, anywhere (also inside
    functions).  ``from x import y`` gives ``x`` and ``x.y``: y may be a submodule.

    Raises:
        RamdiskError: a source file does not parse.
    """
    names: set[str] = set()
    for path in sorted(agent_dir.rglob("*.py")):
        names.update(_imports_of(path))
    return sorted(names)


def _imports_of(path: Path) -> set[str]:
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as exc:
        raise RamdiskError(f"the agent does not parse: {exc}") from None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def find_library(root: Path, soname: str) -> str | None:
    """Where the dynamic loader would find ``soname`` inside ``root`` (relative)."""
    for directory in LIBRARY_DIRS:
        if os.path.lexists(root / directory / soname):
            return f"{directory}/{soname}"
    return None


def library_closure(root: Path, binaries: Iterable[str]) -> tuple[list[str], list[str]]:
    """The libraries ``binaries`` (paths relative to ``root``) need, transitively.

    Returns (found, missing): relative library paths, and the sonames not in ``root``.
    """
    found: dict[str, str] = {}
    missing: set[str] = set()
    pending = list(binaries)
    while pending:
        for soname in elf.needed_libraries(resolve(root, pending.pop())):
            if soname in found or soname in missing:
                continue
            location = find_library(root, soname)
            if location is None:
                missing.add(soname)
            else:
                found[soname] = location
                pending.append(location)
    return sorted(found.values()), sorted(missing)


def resolve(root: Path, relative: str) -> Path:
    """``relative`` inside ``root`` with symlinks followed, absolute ones re-rooted."""
    path = root / relative
    for _ in range(40):
        if not path.is_symlink():
            return path
        target = os.readlink(path)
        path = root / target.lstrip("/") if target.startswith("/") else path.parent / target
    raise RamdiskError(f"too many levels of symbolic links at {root / relative}")


def unloadable_extensions(python: PythonRoot) -> list[str]:
    """Extension modules whose libraries the packages lack (``_sqlite3`` without libsqlite3-0)."""
    dynload = python.stdlib / "lib-dynload"
    blocked = []
    for path in sorted(dynload.glob("*.so")):
        _, missing = library_closure(python.root, [path.relative_to(python.root).as_posix()])
        if missing:
            blocked.append(path.name.split(".", 1)[0])
    return blocked


@dataclass(frozen=True, slots=True)
class Probe:
    """What importing the agent loaded: module files (relative to the root) and the
    imports that failed (name → error)."""

    files: tuple[str, ...]
    failed: dict[str, str]


def probe(python: PythonRoot, names: Sequence[str], blocked: Sequence[str]) -> Probe:
    """Import ``names`` in the packaged interpreter and list the files of what loaded.

    Raises:
        RamdiskError: the interpreter could not run.
    """
    output = python.run(
        ["-B", "-c", _PROBE, ",".join(blocked), *names], what="probing the agent's imports"
    )
    files, failed = set(), {}
    for line in output.decode(errors="replace").splitlines():
        name, _, detail = line.partition("\t")
        if name.startswith("!"):
            failed[name[1:]] = detail
            continue
        path = Path(detail)
        if path.is_relative_to(python.stdlib):
            files.add(path.relative_to(python.root).as_posix())
    return Probe(files=tuple(sorted(files)), failed=failed)


@dataclass(frozen=True, slots=True)
class StagedPython:
    """What went into the ramdisk: module files and shared libraries (relative paths)."""

    modules: tuple[str, ...]
    libraries: tuple[str, ...]


def stage_python(python: PythonRoot, stage: Path, agent_dir: Path) -> StagedPython:
    """Put the interpreter, the libraries, the stdlib the agent needs and the agent
    (all compiled) into ``stage``.

    Raises:
        RamdiskError: an agent module failed to import, a library is missing from the
            packages, or compiling failed.
    """
    agent = copy_agent(agent_dir, python.stdlib)
    own = agent_modules(agent_dir)
    names = [*own, *source_imports(agent_dir), *EXTRA_MODULES]
    found = probe(python, names, unloadable_extensions(python))
    _check_imported(found, own)
    agent_files = {p.relative_to(python.root).as_posix() for p in agent.rglob("*") if p.is_file()}
    modules = sorted(set(found.files) | agent_files)
    extensions = [m for m in modules if m.endswith(".so")]
    libraries, missing = library_closure(python.root, [PYTHON, *extensions])
    if missing:
        raise RamdiskError(
            f"the Debian packages {', '.join(PACKAGES)} lack {', '.join(missing)}, "
            f"which {PYTHON} or {', '.join(extensions) or 'its modules'} need"
        )
    loader = elf.interpreter(python.root / PYTHON) or f"/{LIBRARY_DIRS[0]}/ld-linux-x86-64.so.2"
    for relative in [*modules, PYTHON, *libraries, loader.lstrip("/")]:
        stage_path(python.root, stage, relative)
    (stage / "usr/bin/python3").symlink_to("python3.11")
    compile_stage(python, stage)
    return StagedPython(modules=tuple(modules), libraries=tuple(libraries))


def _check_imported(found: Probe, required: Sequence[str]) -> None:
    broken = {n: e for n, e in found.failed.items() if n in required}
    if broken:
        details = "; ".join(f"{name}: {error}" for name, error in sorted(broken.items()))
        raise RamdiskError(f"the agent does not import with the ramdisk's Python: {details}")


def stage_path(root: Path, stage: Path, relative: str) -> None:
    """Copy ``root/relative`` to ``stage/relative``; a symlink is copied as a symlink
    and its target staged too."""
    source, target = root / relative, stage / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if not source.is_symlink():
        if not target.exists():
            shutil.copy2(source, target)  # a copy: the stage is edited, the cache must not be
        return
    link = os.readlink(source)
    if not os.path.lexists(target):
        target.symlink_to(link)
    followed = link.lstrip("/") if link.startswith("/") else str(Path(relative).parent / link)
    stage_path(root, stage, os.path.normpath(followed))


def compile_stage(python: PythonRoot, stage: Path) -> None:
    """Compile the staged modules with the packaged interpreter.

    The agent gets ``__pycache__`` next to its sources (tracebacks show its lines); the
    stdlib is compiled in place of its sources when :data:`STDLIB_SOURCELESS`.

    Raises:
        RamdiskError: compileall failed.
    """
    common: list[str | Path] = ["-m", "compileall", "-q", "-s", stage, "-p", "/"]
    common += ["--invalidation-mode", "unchecked-hash"]
    stdlib = stage / STDLIB
    legacy = ["-b"] if STDLIB_SOURCELESS else []
    python.run([*common, *legacy, "-x", f"/{AGENT_PACKAGE}/", stdlib], what="compiling the stdlib")
    python.run([*common, stdlib / AGENT_PACKAGE], what="compiling the agent")
    if STDLIB_SOURCELESS:
        for source in stdlib.rglob("*.py"):
            if AGENT_PACKAGE not in source.relative_to(stdlib).parts:
                source.unlink()
