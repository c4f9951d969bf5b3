"""Shared helpers for the tests: the stack files as raw dicts and models, and build() under mocks."""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
import pytest
from hypothesis import HealthCheck, settings

from components import config
from components.platform import DeployInputs, build
from tools import engine, stackfile

ROOT = Path(__file__).resolve().parent.parent


def raw_stack(name: str) -> dict[str, Any]:
    """The structured `cpaas:` keys of Pulumi.<name>.yaml, prefix stripped, read by the one stack
    file reader the render and deploy use (a fresh deep copy each call)."""
    return raw_stack_file(ROOT / f"Pulumi.{name}.yaml")


def stack(name: str) -> config.StackConfig:
    return config.parse_stack(raw_stack(name))


def config_errors(raw: dict[str, Any]) -> list[str]:
    """The ConfigError lines parse_stack raises for raw (fails the test if it parses)."""
    with pytest.raises(config.ConfigError) as info:
        config.parse_stack(raw)
    return info.value.lines


# Pulumi.prod.yaml as it was before shared BIG-IPs (issue 16): every unit with a BIG-IP of its own.
BEFORE_DEVICES = ROOT / "tests" / "fixtures" / "prod-before-devices.stack.yaml"


def raw_stack_file(path: Path) -> dict[str, Any]:
    """The structured `cpaas:` keys of the stack file at `path` (a fresh deep copy each call)."""
    stat = path.stat()
    return copy.deepcopy(_raw_config(path, stat.st_mtime_ns, stat.st_size))


# Hundreds of tests read the same few stack files: each is read once per process while it is
# unchanged (its modification time and size are in the key).
@functools.lru_cache(maxsize=16)
def _raw_config(path: Path, _mtime_ns: int, _size: int) -> dict[str, Any]:
    return stackfile.raw_config(path)


def placeholder_inputs(stack_config: config.StackConfig) -> DeployInputs:
    """Deploy-time values as the renderer makes them: secrets marked secret, PEM stand-ins."""
    return DeployInputs(
        secrets={k: pulumi.Output.secret(f"<secret {k}>") for k in stack_config.secret_keys()},
        values={k: engine.mock_pem("CERTIFICATE", k) for k in stack_config.plain_keys()},
        files={path: engine.mock_pem("CERTIFICATE", path) for path in stack_config.trust_files()},
    )


def placeholder_refs(stack_config: config.StackConfig) -> dict[str, Mapping[str, Any]]:
    """What the StackReferences of a stack's clusters answer in tests: a placeholder kubeconfig."""
    return {
        u.cluster.stack: {u.cluster.output: "<kubeconfig>"}
        for u in stack_config.units
        if isinstance(u.cluster, config.StackReferenceCluster)
    }


def entries(run: engine.Run) -> list[dict[str, Any]]:
    """resources.json of a render of `run`: the state a plan starts from."""
    from tools import graph, render

    return json.loads(json.dumps([render.resource_entry(r) for r in graph.stable_order(run.registrations)]))


def run_build(
    stack_config: config.StackConfig,
    stack_name: str = "test",
    stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
    mocks: type[engine.StateMocks] = engine.StateMocks,
    preview: bool = False,
) -> engine.Run:
    """build(stack) under the recording mock engine (`mocks`, a StateMocks subclass, plays the
    providers); StackReferences answer with a placeholder kubeconfig, or with `stack_outputs`
    ({stack: {output: value}}, e.g. unit stacks' gslbRefs). `preview`: as `pulumi preview` of a
    new stack runs it (provider-computed outputs unknown)."""
    refs = {**placeholder_refs(stack_config), **(stack_outputs or {})}
    return engine.run(
        lambda: build(stack_config, placeholder_inputs(stack_config)),
        stack=stack_name,
        mocks=mocks(stack_outputs=refs),
        preview=preview,
    )


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """A command run to its end: exit code, stdout and stderr as text (a non-zero exit is no error)."""
    return subprocess.run(
        list(argv),
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_script(
    interpreter: Sequence[str], script: str, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """A step's script as a `command:local:Command` runs it: its interpreter, its environment and
    this PATH (where a test may put fakes first)."""
    return run(
        [*interpreter, script], env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}, timeout=60
    )


def fake_tool(bin_dir: Path, name: str, text: str) -> Path:
    """An executable `name` in `bin_dir` (made if missing) running `text`."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text(text)
    path.chmod(0o755)
    return path


def examples(count: int, *also_suppressed: HealthCheck) -> settings:
    """The suite's Hypothesis settings: `count` examples, the same ones every run (derandomized),
    no example database and no deadline (a render of a stack takes a while)."""
    return settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, *also_suppressed],
    )
