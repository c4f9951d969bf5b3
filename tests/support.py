"""Shared helpers for the tests: the stack files as raw dicts and models, and build() under mocks."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi

from components import config
from components.platform import DeployInputs, build
from tools import engine, stackfile

ROOT = Path(__file__).resolve().parent.parent


def raw_stack(name: str) -> dict[str, Any]:
    """The structured `cpaas:` keys of Pulumi.<name>.yaml, prefix stripped, read by the one stack
    file reader the render and deploy use (a fresh deep copy each call)."""
    return copy.deepcopy(stackfile.raw_config(ROOT / f"Pulumi.{name}.yaml"))


def stack(name: str) -> config.StackConfig:
    return config.parse_stack(raw_stack(name))


def placeholder_inputs(stack_config: config.StackConfig) -> DeployInputs:
    """Deploy-time values as the renderer makes them: secrets marked secret, PEM stand-ins."""
    return DeployInputs(
        secrets={k: pulumi.Output.secret(f"<secret {k}>") for k in stack_config.secret_keys()},
        values={k: engine.mock_pem("CERTIFICATE", k) for k in stack_config.plain_keys()},
        files={path: engine.mock_pem("CERTIFICATE", path) for path in stack_config.trust_files()},
    )


def run_build(
    stack_config: config.StackConfig,
    stack_name: str = "test",
    stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
    mocks: type[engine.StateMocks] = engine.StateMocks,
) -> engine.Run:
    """build(stack) under the recording mock engine (`mocks`, a StateMocks subclass, plays the
    providers); StackReferences answer with a placeholder kubeconfig, or with `stack_outputs`
    ({stack: {output: value}}, e.g. unit stacks' gslbRefs)."""
    refs: dict[str, Mapping[str, Any]] = {
        u.cluster.stack: {u.cluster.output: "<kubeconfig>"}
        for u in stack_config.units
        if isinstance(u.cluster, config.StackReferenceCluster)
    }
    refs.update(stack_outputs or {})
    return engine.run(
        lambda: build(stack_config, placeholder_inputs(stack_config)),
        stack=stack_name,
        mocks=mocks(stack_outputs=refs),
    )
