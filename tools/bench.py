"""Benchmark the render at 1, 4 and 16 units (grown with tools.replicate).

    python -m tools.bench [--sizes 1 4 16] [--repeat 2]

For each size: resources, evaluation (build under the mock engine), validation (and per
resource), total, peak memory, and evaluation against two floors measured in the same run under
the same mock engine:

- bare: the SDK registering as many plain 2-property resources (the issue's baseline);
- replay: the SDK registering exactly the resources the program registered (same types, the
  output properties their typed classes declare, inputs, parents, providers, dependencies)
  with none of the program's code: what any program that registers these resources pays.

Times are the best of --repeat runs. Validation compiles each schema once per process; a warm-up
render pays that first-use cost (about 0.5 s) outside the timings. Progress goes to stderr.

Then the checks: times the code is held to (a `check:` line each), kept here rather than in pytest,
where a busy machine would fail them at random. Exit 1 when one is missed.
"""

from __future__ import annotations

import argparse
import copy
import gc
import importlib
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pulumi

from components import config
from tools import engine, fastschema, render, replicate, sdk_internals, stackfile
from tools.validate import Validator, resolve_schema_dir

T = TypeVar("T")
SOURCES = ("aws-syd", "azure-mel", "onprem-syd")


def grown_stack(raw_prod: dict[str, Any], units: int) -> config.StackConfig:
    """prod with `units` units: trimmed below its own count (without GSLB), grown by replication above."""
    raw = copy.deepcopy(raw_prod)
    if units < len(raw["units"]):
        raw["units"] = raw["units"][:units]
        raw.pop("gslb", None)
        _drop_what_names_cut_units(raw)
    i = 0
    while len(raw["units"]) < units:
        replica = replicate.derive(raw, SOURCES[i % len(SOURCES)], f"bench-{i:02d}")
        raw = replicate.apply(raw, replica)
        i += 1
    return config.parse_stack(raw)


def _drop_what_names_cut_units(raw: dict[str, Any]) -> None:
    """After trimming: shared devices no unit names any more, multi-cluster peers that are gone."""
    kept = {u["name"] for u in raw["units"]}
    named = {(u.get("bigip") or {}).get("device") for u in raw["units"]}
    raw["bigipDevices"] = [d for d in raw.get("bigipDevices") or [] if d.get("name") in named]
    for unit in raw["units"]:
        for app in unit.get("apps") or []:
            peers = (app.get("multiCluster") or {}).get("peers") or []
            if any(p.get("unit") not in kept for p in peers):
                del app["multiCluster"]


def prod_raw() -> dict[str, Any]:
    """The `cpaas:` keys of Pulumi.prod.yaml as the program receives them."""
    return stackfile.raw_config(stackfile.stack_path("prod"))


def run_stack(stack: config.StackConfig) -> engine.Run:
    """The render's evaluation of `stack`, without deploy-time values from a stack file."""
    return render.run_stack(stackfile.Checked(stack), "bench")[0]


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _best(repeat: int, fn: Callable[[], T], deferred_gc: bool = True) -> tuple[float, T]:
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        result = fn()
        if deferred_gc:
            # The mock engine pauses the cyclic GC during a run; count the collection it defers.
            gc.collect()
        best = min(best, time.perf_counter() - started)
    assert result is not None
    return best, result


@dataclass
class Row:
    units: int
    resources: int
    evaluate: float
    validate: float
    total: float
    peak_mib: float
    bare: float  # plain resources with 2 properties
    replay: float  # the same registrations without the program

    @property
    def validate_ms_per_resource(self) -> float:
        return self.validate / self.resources * 1000 if self.resources else float("nan")

    @property
    def floor_ratio(self) -> float:
        return self.replay / self.bare if self.bare else float("nan")

    @property
    def replay_ratio(self) -> float:
        return self.evaluate / self.replay if self.replay else float("nan")

    @property
    def ratio(self) -> float:
        return self.evaluate / self.bare if self.bare else float("nan")


def measure(stack: config.StackConfig, repeat: int) -> Row:
    size = f"{len(stack.units)} unit(s)"
    _progress(f"{size}: evaluating (best of {repeat})")
    evaluate_s, run = _best(repeat, lambda: run_stack(stack))
    rendered = render.render_files(run, stack, [])
    schema_dir = resolve_schema_dir(None)
    count = len(run.registrations)
    _progress(f"{size}: validating {count} resources")
    # Validation runs with the GC on: what it triggers is already in its time.
    validate_s, _ = _best(repeat, lambda: render.validate(rendered, stack, schema_dir), deferred_gc=False)
    _progress(f"{size}: peak memory")
    # Peak memory in a separate pass: tracemalloc slows everything it watches several-fold.
    tracemalloc.start()
    render.validate(render.render_files(run_stack(stack), stack, []), stack, schema_dir)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()

    def bare() -> None:
        for i in range(count):
            pulumi.CustomResource("cpaas:bench:Plain", f"plain-{i}", {"p0": 0, "p1": 1})

    _progress(f"{size}: floors (bare, replay)")
    bare_s, _ = _best(repeat, lambda: engine.run(bare, stack="bench"))
    replay_program = replayer(run.registrations)
    replay_s, _ = _best(repeat, lambda: engine.run(replay_program, stack="bench"))
    return Row(
        len(stack.units), count, evaluate_s, validate_s, evaluate_s + validate_s, peak, bare_s, replay_s
    )


def warm_up(stack: config.StackConfig) -> None:
    """Each timed step once, untimed: imports, the SDK's first registrations, schema compiles."""
    run = run_stack(stack)
    render.validate(render.render_files(run, stack, []), stack, resolve_schema_dir(None))
    engine.run(replayer(run.registrations), stack="bench")


def declared_properties(types: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Type token -> the property names its typed SDK class declares (its getters).

    A typed class passes every declared property to the SDK (outputs as None), and the SDK makes
    an Output for each; the replay passes the same names. Found through the packages' resource
    module registrations (what the SDK itself uses to rebuild resource references).
    """
    wanted = set(types)
    found: dict[str, tuple[str, ...]] = {}
    for modules in sdk_internals.resource_modules().values():
        for module in modules:
            info = getattr(module, "mod_info", None) or {}
            for token, class_name in info.get("classes", {}).items():
                if token in wanted and token not in found:
                    cls = getattr(importlib.import_module(info["fqn"]), class_name)
                    found[token] = tuple(sdk_internals.resource_py_to_pulumi_names(cls).values())
    return found


def replayer(registrations: list[engine.Registration]) -> Callable[[], None]:
    """A program registering `registrations` again, as plain SDK resources, in their order."""
    declared = declared_properties(r.type for r in registrations if r.custom)

    def program() -> None:
        by_urn: dict[str, pulumi.Resource] = {}
        for reg in registrations:
            opts = pulumi.ResourceOptions(
                parent=by_urn.get(reg.parent),
                # A provider reference is "<urn>::<id>".
                provider=by_urn.get(reg.provider.rsplit("::", 1)[0]),  # type: ignore[arg-type]
                depends_on=[by_urn[d] for d in reg.dependencies if d in by_urn],
            )
            props = {**dict.fromkeys(declared.get(reg.type, ())), **reg.inputs}
            res: pulumi.Resource
            if reg.type.startswith("pulumi:providers:"):
                res = pulumi.ProviderResource(reg.type.rsplit(":", 1)[1], reg.name, props, opts)
            elif reg.custom:
                res = pulumi.CustomResource(reg.type, reg.name, props, opts)
            elif reg.inputs:  # a remote component (kubernetes yaml/v2), constructed by its provider
                res = pulumi.ComponentResource(reg.type, reg.name, props, opts, remote=True)
            else:
                res = pulumi.ComponentResource(reg.type, reg.name, None, opts)
                res.register_outputs({})
            by_urn[reg.urn] = res

    return program


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------

VALIDATE_MS_PER_RESOURCE = 0.4
FIRST_CRD_LOOKUP_S = 1.0
REFUSAL_S = 3.0
GROW_AND_RENDER_S = 30.0
# The first CRD lookup of a process: one Calico object, its CRD file indexed and one document parsed.
BGP_PEER = {
    "apiVersion": "projectcalico.org/v3",
    "kind": "BGPPeer",
    "metadata": {"name": "x"},
    "spec": {"peerIP": "192.0.2.1", "asNumber": 64512},
}


@dataclass(frozen=True)
class Check:
    what: str
    measured: float
    limit: float
    unit: str = "s"

    @property
    def ok(self) -> bool:
        return self.measured <= self.limit

    def line(self) -> str:
        verdict = "ok" if self.ok else "MISSED"
        limit = f"limit {self.limit:g} {self.unit}"
        return f"check: {self.what}: {self.measured:.3f} {self.unit} ({limit}): {verdict}"


def _seconds(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


@contextmanager
def _cold_schema_cache() -> Iterator[None]:
    """No schema compiled in this process and an empty disk cache; both restored after."""
    saved = os.environ.get(fastschema.CACHE_ENV)
    with tempfile.TemporaryDirectory() as empty:
        os.environ[fastschema.CACHE_ENV] = empty
        fastschema.clear()
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop(fastschema.CACHE_ENV, None)
            else:
                os.environ[fastschema.CACHE_ENV] = saved
            fastschema.clear()


def first_crd_lookup(schema_dir: Path | None) -> Check:
    """A render's first custom resource in a new process: indexing the CRD files (3 MB) must not
    parse them whole."""
    with _cold_schema_cache():
        seconds = _seconds(lambda: Validator(schema_dir).k8s_object(BGP_PEER, "1.33", "bench.yaml"))
    return Check("first CRD lookup in a new process, empty schema cache", seconds, FIRST_CRD_LOOKUP_S)


def hostile_stack_files(prod_text: str) -> dict[str, str]:
    """Stack files made to be slow to read: each must be refused (exit 2) at once."""
    levels = ["  cpaas:environment: dev", '  l0: &l0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    levels += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    return {
        "an alias expansion bomb": "config:\n" + "\n".join(levels) + "\n  cpaas:units: *l8\n",
        "nesting 100000 deep": "config:\n  cpaas:units: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "a 5 MB line": prod_text.replace("Platform Root CA", "x" * 5_000_000),
        "a 300000-character value": prod_text.replace("ap-southeast-2", "x" * 300_000, 1),
    }


def refusal(what: str, text: str) -> Check:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Pulumi.bench.yaml"
        path.write_text(text, encoding="utf-8")

        def refuse() -> None:
            try:
                stackfile.read(path)
            except stackfile.StackFileError:
                return
            raise RuntimeError(f"bench: the stack file with {what} was accepted; it must be refused")

        return Check(f"refusing a stack file with {what}", _seconds(refuse), REFUSAL_S)


def checks(largest: Row, grow_s: float) -> list[Check]:
    found = [
        Check(
            f"validation at {largest.units} units, per resource",
            largest.validate_ms_per_resource,
            VALIDATE_MS_PER_RESOURCE,
            "ms",
        ),
        Check(
            f"growing prod to {largest.units} units by replication, evaluating and validating it",
            grow_s + largest.total,
            GROW_AND_RENDER_S,
        ),
    ]
    prod_text = stackfile.stack_path("prod").read_text(encoding="utf-8")
    return found + [refusal(what, text) for what, text in hostile_stack_files(prod_text).items()]


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(list(argv) if argv is not None else None)
    raw = prod_raw()
    schema_dir = resolve_schema_dir(None)
    cold = first_crd_lookup(schema_dir)  # before anything in this process compiles a schema
    Validator(schema_dir)  # imports and schema discovery outside the timings
    _progress("warm-up: 1 unit (first uses, such as compiling each schema, are not per-unit costs)")
    warm_up(grown_stack(raw, 1))
    print(
        "units  resources  evaluate_s  validate_s  validate_ms/res  total_s  peak_MiB  bare_s  replay_s"
        "  replay/bare  evaluate/bare  evaluate/replay"
    )
    rows = [measure(grown_stack(raw, n), args.repeat) for n in args.sizes]
    for r in rows:
        print(
            f"{r.units:5d}  {r.resources:9d}  {r.evaluate:10.3f}  {r.validate:10.3f}"
            f"  {r.validate_ms_per_resource:15.3f}  {r.total:7.3f}"
            f"  {r.peak_mib:8.1f}  {r.bare:6.3f}  {r.replay:8.3f}  {r.floor_ratio:11.2f}"
            f"  {r.ratio:13.2f}  {r.replay_ratio:15.2f}"
        )
    largest = rows[-1]
    print(
        f"at {largest.units} units: evaluation is {largest.ratio:.2f}x the bare SDK with 2-property "
        f"resources (target <= 1.5x); the SDK alone registering the same resources is "
        f"{largest.floor_ratio:.2f}x, so the program adds {largest.replay_ratio:.2f}x on top of it; "
        f"validation {largest.validate_ms_per_resource:.3f} ms per resource (target <= 0.4 ms)"
    )
    grow_s = _seconds(lambda: grown_stack(raw, largest.units))
    found = [cold, *checks(largest, grow_s)]
    for check in found:
        print(check.line())
    return 0 if all(c.ok for c in found) else 1


if __name__ == "__main__":
    sys.exit(main())
