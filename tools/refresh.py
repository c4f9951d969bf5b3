"""The refresh model: what the engine can use before the program runs.

`pulumi refresh`, `pulumi destroy` and `pulumi up --refresh` (the workflows' mode) configure
each provider from the inputs recorded in the state, and run each local command's delete from
its recorded inputs, before (or without) running the program. Providers run in the project
folder. So a recorded input that names a file must name one that every checkout has: a
relative path inside the project, present and not git-ignored, that the program does not write.

`problems(run, root, written)` lists every input that breaks this; `recording_writes()` records
what a program writes while it runs, for `written`.
Ref: pulumi/pulumi v3.259.0 pkg/resource/deploy/providers/registry.go (a provider is loaded
and configured from `res.Inputs` of the state), pkg/engine/deployment.go and
sdk/go/common/resource/plugin/plugin.go (plugins start in the project's folder).
Ref: https://www.pulumi.com/docs/iac/operations/stack-management/run-program/
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from tools import engine

# Inputs recorded in state and used without the program: every provider, and local commands
# (their delete runs on destroy from the recorded inputs).
CHECKED_TYPES = re.compile(r"^(pulumi:providers:.+|command:local:Command)$")
# Input names that hold a file or folder (e.g. f5bigip trustedCertPath, command dir, kubernetes
# kubeconfig when it is a path rather than the content).
PATH_KEY = re.compile(r"(?i)(path|dir|directory|file|cache|kubeconfig)$")
MASKED = {engine.SECRET, engine.UNKNOWN}


def _path_like(key: str, value: Any) -> bool:
    return (
        isinstance(value, str)
        and bool(PATH_KEY.search(key))
        and value not in MASKED
        and "\n" not in value
        and not value.lstrip().startswith(("{", "["))
        and value.strip() != ""
    )


def path_inputs(inputs: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(input path, value) of every string input whose name says it holds a file or folder."""
    if isinstance(inputs, dict):
        for key, value in inputs.items():
            where = f"{prefix}.{key}" if prefix else key
            if _path_like(key, value):
                yield where, value
            else:
                yield from path_inputs(value, where)
    elif isinstance(inputs, list):
        for i, value in enumerate(inputs):
            yield from path_inputs(value, f"{prefix}[{i}]")


def ignored(root: Path, relative: str) -> bool:
    """Whether git ignores `relative` (then a fresh checkout does not have it)."""
    result = subprocess.run(
        ["git", "-C", str(root), "check-ignore", "-q", "--no-index", "--", relative],
        capture_output=True,
        check=False,
    )
    if result.returncode not in (0, 1):
        raise RuntimeError(f"git check-ignore failed in {root}: {result.stderr.decode().strip()}")
    return result.returncode == 0


def _problem(value: str, root: Path, written: set[Path]) -> str | None:
    if value.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", value):
        return "is an absolute path, which names this machine's checkout, not the next one's"
    pure = PurePosixPath(value)
    if ".." in pure.parts or "\\" in value:
        return "leaves the project folder (or is not a POSIX path)"
    target = (root / pure).resolve()
    if any(target == w or w in target.parents or target in w.parents for w in written):
        return "is written by the program while it runs, so a refresh or destroy before it has none"
    if not target.exists():
        return "does not exist in the project"
    if ignored(root, pure.as_posix()):
        return "is git-ignored, so a fresh checkout does not have it"
    return None


def problems(run: engine.Run, root: Path, written: Iterable[Path] = ()) -> list[str]:
    """One line per recorded input the engine could not use before the program runs."""
    done = {Path(p).resolve() for p in written}
    lines: list[str] = []
    for reg in run.registrations:
        if not CHECKED_TYPES.match(reg.type):
            continue
        for where, value in path_inputs(reg.inputs):
            why = _problem(value, root.resolve(), done)
            if why is not None:
                lines.append(f"{reg.type} {reg.name}: {where} = {value!r} {why}")
    return lines


# ---------------------------------------------------------------------------------------------
# What a program writes while it runs (Python audit events; hooks cannot be removed, so one
# hook records only while `recording_writes` is active)
# ---------------------------------------------------------------------------------------------

_lock = threading.Lock()
_active: list[set[Path]] = []
_hooked: list[bool] = []  # one hook per process
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _written_path(event: str, args: tuple[Any, ...]) -> Any:
    if event == "open":
        path, mode, flags = args
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS
        )
        return path if writes else None
    if event == "os.mkdir":
        return args[0]
    if event in ("os.rename", "os.replace", "os.symlink", "os.link"):
        return args[1]
    return None


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _active:
        return
    path = _written_path(event, args)
    if isinstance(path, (str, bytes, os.PathLike)) and not isinstance(path, int):
        found = Path(os.fsdecode(path)).absolute()
        if "__pycache__" not in found.parts:  # bytecode the import system caches
            with _lock:
                for sink in _active:
                    sink.add(found)


@contextlib.contextmanager
def recording_writes() -> Iterator[set[Path]]:
    """Collect the files and folders opened for writing or made while the block runs."""
    with _lock:
        if not _hooked:
            sys.addaudithook(_hook)
            _hooked.append(True)
    sink: set[Path] = set()
    _active.append(sink)
    try:
        yield sink
    finally:
        _active.remove(sink)


def inside(root: Path, paths: Iterable[Path]) -> list[str]:
    """The paths under `root`, relative and sorted."""
    base = root.resolve()
    return sorted(str(p.resolve().relative_to(base)) for p in paths if p.resolve().is_relative_to(base))
