"""Parallel by construction: units never depend on each other; only GSLB joins them."""

from __future__ import annotations

import pytest

from components import config
from tests.support import raw_stack, run_build
from tools import bench, engine, render


def _chain(stack: config.StackConfig) -> list[engine.Registration]:
    run = run_build(stack, "prod")
    return render.longest_chain(render.stable_order(run.registrations))


@pytest.fixture(scope="module")
def sixteen() -> config.StackConfig:
    return bench.grown_stack(raw_stack("prod"), 16)


def test_the_longest_chain_of_a_16_unit_stack_is_no_longer_than_a_3_unit_ones(
    sixteen: config.StackConfig,
) -> None:
    three = _chain(config.parse_stack(raw_stack("prod")))
    assert len(sixteen.units) == 16
    assert len(_chain(sixteen)) <= len(three)


def test_no_resource_of_one_unit_depends_on_another_unit(sixteen: config.StackConfig) -> None:
    run = run_build(sixteen, "prod")
    by_urn = run.by_urn()
    unit_of = {r.urn: render.unit_of(r, by_urn) for r in run.registrations}
    for reg in run.registrations:
        mine = unit_of[reg.urn]
        for dep in reg.dependencies:
            theirs = unit_of.get(dep, "_stack")
            assert mine == "_stack" or theirs in (mine, "_stack"), (reg.name, dep)
    gslb = [r for r in run.registrations if r.type == "f5bigip:index/as3:As3"]
    assert gslb and all(unit_of[d] == "_stack" for r in gslb for d in r.dependencies)


def test_the_bench_replay_registers_exactly_what_the_program_registered() -> None:
    """The replay floor is only a floor if it registers the same resources: same URNs, types,
    parents, providers, dependencies and inputs, with none of the program's code."""
    program = run_build(config.parse_stack(raw_stack("prod")), "prod")
    replay = engine.run(bench.replayer(program.registrations), stack="prod")

    def shape(reg: engine.Registration) -> tuple[object, ...]:
        return (
            reg.type,
            reg.parent,
            reg.provider.rsplit("::", 1)[0],
            reg.dependencies,
            reg.custom,
            reg.inputs,
        )

    assert len(replay.registrations) == len(program.registrations) > 200
    assert {r.urn: shape(r) for r in replay.registrations} == {r.urn: shape(r) for r in program.registrations}


def test_the_bench_replay_passes_every_property_a_typed_class_declares() -> None:
    declared = bench.declared_properties(["kubernetes:core/v1:ConfigMap", "kubernetes:helm.sh/v3:Release"])
    assert set(declared["kubernetes:core/v1:ConfigMap"]) == {
        "apiVersion", "binaryData", "data", "immutable", "kind", "metadata",
    }  # fmt: skip
    assert {"values", "status", "chart"} <= set(declared["kubernetes:helm.sh/v3:Release"])


def test_the_bench_prints_a_row_per_size_and_the_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--sizes", "1", "--repeat", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "units", "resources", "evaluate_s", "validate_s", "total_s", "peak_MiB", "bare_s", "replay_s",
        "replay/bare", "evaluate/bare", "evaluate/replay",
    ]  # fmt: skip
    row = lines[1].split()
    assert row[0] == "1" and int(row[1]) > 50 and all(float(x) > 0 for x in row[2:])
    assert lines[2].startswith("at 1 units: evaluation is ") and "target <= 1.5x" in lines[2]
