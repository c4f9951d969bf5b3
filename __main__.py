"""cpaas: read the stack config once, build, export. Everything else lives in components/."""

import json
from pathlib import Path

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

values = {key: cfg.require(key) for key in stack.plain_keys()}
# f5bigip reads its trusted certificate from a file; certificates are public, so a file
# beside the program (git-ignored) is fine.
trust_dir = Path(__file__).resolve().parent / ".bigip-trust"
trust_dir.mkdir(exist_ok=True)
files = {}
for key, pem in values.items():
    (trust_dir / f"{key}.pem").write_text(pem)
    files[key] = str(trust_dir / f"{key}.pem")

inputs = DeployInputs(
    secrets={key: cfg.require_secret(key) for key in stack.secret_keys()},
    values=values,
    files=files,
)
for name, value in build(stack, inputs).items():
    pulumi.export(name, value)
