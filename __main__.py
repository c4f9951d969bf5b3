"""cpaas: read the stack config once, build, export. Everything else lives in components/."""

from pathlib import Path

import pulumi

from components.config import ConfigError
from components.platform import DeployInputs, build, read_trust_files
from tools import stackfile

cfg = pulumi.Config("cpaas")

try:
    # The render checks a stack file with the same function: both refuse the same things.
    stack = stackfile.check(stackfile.wire_from_runtime(), pulumi.get_stack()).stack
except stackfile.StackFileError as exc:
    # RunError prints the message alone: one line per problem, each with its config path.
    raise pulumi.RunError(f"invalid stack config: {exc.count()}\n{exc}") from None

try:
    # Committed certificate files; the program writes none (README "The refresh model").
    files = read_trust_files(stack, Path(__file__).resolve().parent)
except ConfigError as exc:
    raise pulumi.RunError(f"invalid stack config: {len(exc.lines)} config error(s)\n{exc}") from None

inputs = DeployInputs(
    secrets={key: cfg.require_secret(key) for key in stack.secret_keys()},
    values={key: cfg.require(key) for key in stack.plain_keys()},
    files=files,
)
for name, value in build(stack, inputs).items():
    pulumi.export(name, value)
