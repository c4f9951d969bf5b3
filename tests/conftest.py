"""Session fixtures shared by the test modules."""

from __future__ import annotations

import contextlib
import copy
import io
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
from hypothesis import configuration

from components import config
from tests.support import BEFORE_DEVICES, raw_stack, raw_stack_file, run_build, stack
from tools import bench, engine, render
from tools.validate import resolve_schema_dir

ROOT = Path(__file__).resolve().parent.parent

# Hypothesis keeps its example database under .hypothesis/ in the working folder; the suite writes
# nothing into the checkout, so it goes to the user's cache (HYPOTHESIS_STORAGE_DIRECTORY wins).
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    configuration.set_hypothesis_home_dir(Path.home() / ".cache" / "cpaas" / "hypothesis")


@pytest.fixture(scope="session")
def schema_dir() -> Path:
    """The upstream schema folder, found as the renderer finds it. Missing: a skip, or with
    CPAAS_REQUIRE_SCHEMAS=1 (CI) a failure, so CI can never pass without validating."""
    path = resolve_schema_dir(None)
    if path is None or not (path / "MANIFEST.md").is_file():
        message = (
            f"no schema folder at {path}: `make test` finds or fetches them; else set CPAAS_SCHEMAS "
            "to a copy or run `make schemas`"
        )
        if os.environ.get("CPAAS_REQUIRE_SCHEMAS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


# Builds are shared by every module a worker runs (a build costs up to seconds; a copy a tenth of
# that): built once per worker process, and each module gets its own deep copy, so nothing one
# module does to its Run reaches another. Under xdist the first worker to finish a build leaves it
# pickled in the session's shared temp folder, and a worker needing it later loads it (a twentieth
# of a build) instead of building it again; one needing it sooner builds its own.


def _shared_build(request: pytest.FixtureRequest, key: str, build: Callable[[], engine.Run]) -> engine.Run:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return build()
    # Each xdist worker's basetemp is <the session's basetemp>/<worker>: the parent is this run's.
    path = request.getfixturevalue("tmp_path_factory").getbasetemp().parent / f"cpaas-build-{key}.pickle"
    try:
        return cast(engine.Run, pickle.loads(path.read_bytes()))
    except FileNotFoundError:
        pass
    run = build()
    partial = path.with_name(f"{path.name}.{worker}")
    partial.write_bytes(pickle.dumps(run, protocol=pickle.HIGHEST_PROTOCOL))
    partial.replace(path)  # atomic: a reader sees no file or a whole one
    return run


@pytest.fixture(scope="session")
def _prod_build(request: pytest.FixtureRequest) -> engine.Run:
    return _shared_build(request, "prod", lambda: run_build(stack("prod"), "prod"))


@pytest.fixture(scope="session")
def _dev_build(request: pytest.FixtureRequest) -> engine.Run:
    return _shared_build(request, "dev", lambda: run_build(stack("dev"), "dev"))


@pytest.fixture(scope="session")
def _before_devices_build(request: pytest.FixtureRequest) -> engine.Run:
    before = config.parse_stack(raw_stack_file(BEFORE_DEVICES))
    return _shared_build(request, "prod-before-devices", lambda: run_build(before, "prod"))


@pytest.fixture(scope="module")
def prod_before_devices(_before_devices_build: engine.Run) -> engine.Run:
    """Pulumi.prod.yaml before shared BIG-IPs (tests/fixtures), built; one copy per module."""
    return copy.deepcopy(_before_devices_build)


@pytest.fixture(scope="session")
def _sixteen_build(request: pytest.FixtureRequest) -> tuple[config.StackConfig, engine.Run]:
    grown = bench.grown_stack(raw_stack("prod"), 16)
    return grown, _shared_build(request, "sixteen", lambda: run_build(grown, "prod"))


@pytest.fixture(scope="module")
def prod(_prod_build: engine.Run) -> engine.Run:
    """The prod stack (three units) built under the recording mock engine, one copy per module."""
    return copy.deepcopy(_prod_build)


@pytest.fixture(scope="module")
def dev(_dev_build: engine.Run) -> engine.Run:
    """The dev stack built under the recording mock engine, one copy per module."""
    return copy.deepcopy(_dev_build)


@pytest.fixture(scope="module")
def sixteen_prod(
    _sixteen_build: tuple[config.StackConfig, engine.Run],
) -> tuple[config.StackConfig, engine.Run]:
    """prod grown to 16 units by replication (tools.bench.grown_stack, as `make bench` grows it)
    and built under the recording mock engine, one copy of the Run per module."""
    grown, run = _sixteen_build
    return grown, copy.deepcopy(run)


# A validated, policy-checked render (`make render`) per stack, read only: made once per session and
# shared by the workers as builds are (the first to finish leaves it in the session's temp folder).


def _shared_render(request: pytest.FixtureRequest, stack_name: str) -> tuple[Path, int, str]:
    factory = request.getfixturevalue("tmp_path_factory")
    base = factory.getbasetemp()
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    root = base.parent if worker else base
    done, printed_file = root / f"cpaas-render-{stack_name}", root / f"cpaas-render-{stack_name}.printed"
    if printed_file.is_file():
        code, _, printed = printed_file.read_text().partition("\n")
        return done, int(code), printed
    mine = factory.mktemp(f"render-{stack_name}")
    printed_io = io.StringIO()
    with contextlib.redirect_stdout(printed_io), contextlib.redirect_stderr(printed_io):
        code = render.main(["--stack", stack_name, "--out", str(mine), "--policy"])
    printed = printed_io.getvalue().replace(str(mine), str(done))  # as if rendered into `done`
    try:
        mine.rename(done)  # atomic; refused when another worker's is there already
    except OSError:
        shutil.rmtree(mine)
        return _shared_render(request, stack_name) if printed_file.is_file() else (done, code, printed)
    partial = printed_file.with_name(f"{printed_file.name}.{worker or 'main'}")
    partial.write_text(f"{code}\n{printed}")
    partial.replace(printed_file)
    return done, code, printed


@pytest.fixture(scope="session")
def prod_render(request: pytest.FixtureRequest) -> tuple[Path, int, str]:
    """`make render STACK=prod` once per session: (its folder, exit code, what it printed). Read only."""
    return _shared_render(request, "prod")


@pytest.fixture(scope="session")
def dev_render(request: pytest.FixtureRequest) -> tuple[Path, int, str]:
    """`make render STACK=dev` once per session: (its folder, exit code, what it printed). Read only."""
    return _shared_render(request, "dev")
