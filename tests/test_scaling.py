"""Parallel by construction: units never depend on each other; only GSLB joins them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from components import config
from tests.support import ROOT
from tools import bench, engine, graph, render


def _chain(run: engine.Run) -> list[engine.Registration]:
    return graph.longest_chain(graph.stable_order(run.registrations))


@pytest.fixture(scope="module")
def sixteen(sixteen_prod: tuple[config.StackConfig, engine.Run]) -> config.StackConfig:
    return sixteen_prod[0]


@pytest.fixture(scope="module")
def sixteen_run(sixteen_prod: tuple[config.StackConfig, engine.Run]) -> engine.Run:
    return sixteen_prod[1]


def test_the_longest_chain_of_a_16_unit_stack_is_no_longer_than_a_3_unit_ones(
    sixteen: config.StackConfig, sixteen_run: engine.Run, prod: engine.Run
) -> None:
    three = _chain(prod)
    assert len(sixteen.units) == 16
    assert len(_chain(sixteen_run)) <= len(three)


def test_no_resource_of_one_unit_depends_on_another_unit(sixteen_run: engine.Run) -> None:
    run = sixteen_run
    by_urn = run.by_urn()
    unit_of = {r.urn: graph.unit_of(r, by_urn) or "_stack" for r in run.registrations}
    for reg in run.registrations:
        mine = unit_of[reg.urn]
        for dep in reg.dependencies:
            theirs = unit_of.get(dep, "_stack")
            assert mine == "_stack" or theirs in (mine, "_stack"), (reg.name, dep)
    # The GSLB declaration; a unit's own (its imported access profiles) sits in the unit.
    gslb = [r for r in run.registrations if r.type == "f5bigip:index/as3:As3" and unit_of[r.urn] == "_stack"]
    assert gslb and all(unit_of[d] == "_stack" for r in gslb for d in r.dependencies)


def test_the_bench_replay_registers_exactly_what_the_program_registered(prod: engine.Run) -> None:
    """The replay floor is only a floor if it registers the same resources: same URNs, types,
    parents, providers, dependencies and inputs, with none of the program's code."""
    program = prod
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


def test_the_bench_prints_a_row_per_size_the_ratios_and_its_progress(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert bench.main(["--sizes", "1", "--repeat", "1"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == [
        "units", "resources", "evaluate_s", "validate_s", "validate_ms/res", "total_s", "peak_MiB", "bare_s",
        "replay_s", "replay/bare", "evaluate/bare", "evaluate/replay",
    ]  # fmt: skip
    row = lines[1].split()
    assert row[0] == "1" and int(row[1]) > 50 and all(float(x) > 0 for x in row[2:])
    resources, validate_s, per_resource_ms = int(row[1]), float(row[3]), float(row[4])
    assert per_resource_ms == pytest.approx(
        validate_s / resources * 1000, abs=0.0005 / resources * 1000 + 0.001
    )
    assert lines[2].startswith("at 1 units: evaluation is ") and "target <= 1.5x" in lines[2]
    assert f"validation {row[4]} ms per resource (target <= 0.4 ms)" in lines[2]
    assert "bench: 1 unit(s): validating" in err and "bench: warm-up" in err
    checks = [re.sub(r": [\d.]+ (m?s) \(", r": N \1 (", line) for line in lines[3:]]
    assert checks == [
        "check: first CRD lookup in a new process, empty schema cache: N s (limit 1 s): ok",
        "check: validation at 1 units, per resource: N ms (limit 0.4 ms): ok",
        "check: growing prod to 1 units by replication, evaluating and validating it: N s (limit 30 s): ok",
        "check: refusing a stack file with an alias expansion bomb: N s (limit 3 s): ok",
        "check: refusing a stack file with nesting 100000 deep: N s (limit 3 s): ok",
        "check: refusing a stack file with a 5 MB line: N s (limit 3 s): ok",
        "check: refusing a stack file with a 300000-character value: N s (limit 3 s): ok",
    ]


def test_fails_the_bench_with_exit_1_when_a_check_is_missed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, "REFUSAL_S", 0.0)
    # The table's own timings are the other test's; here only the checks and the exit code.
    monkeypatch.setattr(bench, "warm_up", lambda stack: None)
    monkeypatch.setattr(
        bench,
        "measure",
        lambda stack, repeat: bench.Row(len(stack.units), 85, 0.2, 0.01, 0.21, 12.0, 0.1, 0.2),
    )
    assert bench.main(["--sizes", "1", "--repeat", "1"]) == 1
    missed = [line for line in capsys.readouterr().out.splitlines() if line.endswith(": MISSED")]
    assert len(missed) == 4 and all(line.startswith("check: refusing a stack file with ") for line in missed)


def test_fails_the_bench_when_a_hostile_stack_file_is_accepted() -> None:
    with pytest.raises(RuntimeError, match="with a plain prod was accepted; it must be refused"):
        bench.refusal("a plain prod", (ROOT / "Pulumi.prod.yaml").read_text())


def test_validating_a_16_unit_render_again_in_one_process_gives_the_same_clean_answer(
    sixteen: config.StackConfig, sixteen_run: engine.Run, schema_dir: Path
) -> None:
    """Schemas are compiled once per process and reused; what that costs per resource is a bench
    check (tools.bench, `make bench`), not a test: a busy machine would fail it at random."""
    rendered = render.render_files(sixteen_run, sixteen, [])
    first = render.validate(rendered, sixteen, schema_dir)
    again = render.validate(rendered, sixteen, schema_dir)
    assert again == first and first[0] == [] and sum(first[2].values()) > 500
