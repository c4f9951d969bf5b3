"""Benchmark the render at 1, 4 and 16 units (grown with tools.replicate).

    python -m tools.bench [--sizes 1 4 16] [--repeat 2]

For each size: resources, evaluation (build under the mock engine), validation, total, peak
memory, and evaluation against the bare SDK registering as many plain resources under the
same mock engine in the same run (the SDK's own floor). Typed provider resources declare
dozens of output properties, and the SDK makes futures for each, so the 10-property column is
the fairer floor; both are printed. Times are the best of --repeat runs.
"""

from __future__ import annotations

import argparse
import copy
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import pulumi

from components import config
from tools import engine, render, replicate
from tools.validate import Validator, resolve_schema_dir

T = TypeVar("T")
SOURCES = ("aws-syd", "azure-mel", "onprem-syd")


def grown_stack(raw_prod: dict[str, Any], units: int) -> config.StackConfig:
    """prod with `units` units: trimmed below 3 (without GSLB), grown by replication above."""
    raw = copy.deepcopy(raw_prod)
    if units < len(raw["units"]):
        raw["units"] = raw["units"][:units]
        raw.pop("gslb", None)
    i = 0
    while len(raw["units"]) < units:
        replica = replicate.derive(raw, SOURCES[i % len(SOURCES)], f"bench-{i:02d}")
        raw = replicate.apply(raw, replica)
        i += 1
    return config.parse_stack(raw)


def _best(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        result = fn()
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
    bare10: float  # plain resources with 10 properties

    @property
    def ratio10(self) -> float:
        return self.evaluate / self.bare10 if self.bare10 else float("nan")

    @property
    def ratio(self) -> float:
        return self.evaluate / self.bare if self.bare else float("nan")


def measure(stack: config.StackConfig, repeat: int) -> Row:
    sf = render.StackFile("bench", "cpaas", {}, set(), {})

    def evaluate() -> engine.Run:
        return render.run_stack(stack, sf, "bench")[0]

    evaluate_s, run = _best(repeat, evaluate)
    rendered = render.render_files(run, stack, [])
    schema_dir = resolve_schema_dir(None)
    validate_s, _ = _best(repeat, lambda: render.validate(rendered, stack, schema_dir))
    count = len(run.registrations)
    # Peak memory in a separate pass: tracemalloc slows everything it watches several-fold.
    tracemalloc.start()
    render.validate(render.render_files(evaluate(), stack, []), stack, schema_dir)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()

    def bare(props: int) -> Callable[[], engine.Run]:
        def program() -> None:
            for i in range(count):
                pulumi.CustomResource("cpaas:bench:Plain", f"plain-{i}", {f"p{j}": j for j in range(props)})

        return lambda: engine.run(program, stack="bench")

    bare_s, _ = _best(repeat, bare(2))
    bare10_s, _ = _best(repeat, bare(10))
    return Row(
        len(stack.units), count, evaluate_s, validate_s, evaluate_s + validate_s, peak, bare_s, bare10_s
    )


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(list(argv) if argv is not None else None)
    raw = render.read_stack_file("prod").raw
    Validator(resolve_schema_dir(None))  # imports and schema discovery outside the timings
    measure(grown_stack(raw, 1), 1)  # warm-up: first-use costs are not per-unit costs
    print(
        "units  resources  evaluate_s  validate_s  total_s  peak_MiB  bare_sdk_s"
        "  evaluate/bare  evaluate/bare10"
    )
    rows = [measure(grown_stack(raw, n), args.repeat) for n in args.sizes]
    for r in rows:
        print(
            f"{r.units:5d}  {r.resources:9d}  {r.evaluate:10.3f}  {r.validate:10.3f}  {r.total:7.3f}"
            f"  {r.peak_mib:8.1f}  {r.bare:10.3f}  {r.ratio:13.2f}  {r.ratio10:15.2f}"
        )
    largest = rows[-1]
    print(
        f"at {largest.units} units: evaluation is {largest.ratio:.2f}x the bare SDK with 2-property "
        f"resources and {largest.ratio10:.2f}x with 10-property ones (target <= 1.5x); validation "
        f"{largest.validate / largest.resources * 1000:.2f} ms per resource"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
