"""cpaas: read the stack config once, build, export. Everything else lives in components/."""

import json

import pulumi

from components.config import ConfigError, config_keys, parse_stack
from components.platform import DeployInputs, build

cfg = pulumi.Config("cpaas")


def _read(key: str) -> object:
    # Structured keys arrive as JSON text; scalars (e.g. environment) as plain strings.
    raw = cfg.get(key)
    try:
        return None if raw is None else json.loads(raw)
    except ValueError:
        return raw


try:
    stack = parse_stack({k: v for k in config_keys() if (v := _read(k)) is not None})
except ConfigError as exc:
    # RunError prints the message alone: one line per problem, each with its config path.
    raise pulumi.RunError("invalid stack config:\n" + str(exc)) from None

inputs = DeployInputs(
    secrets={key: cfg.require_secret(key) for key in stack.secret_keys()},
    values={key: cfg.require(key) for key in stack.plain_keys()},
)
for name, value in build(stack, inputs).items():
    pulumi.export(name, value)
