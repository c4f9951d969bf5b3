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
