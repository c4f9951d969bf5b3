"""A step that fails when the BIG-IP refused a tmsh command (`f5bigip.Command`, when="apply").

The provider runs each command through util/bash and stores what it printed (`commandResults`)
without looking at it, and its read does nothing, so a refused command passes as a successful
step and stays stored that way. The check is its own `command:local:Command`, run after the
command with the stored output as its environment; `tmsh_check.sh` exits non-zero on a tmsh
error. So a refused command is a failed step of that unit only: with --continue-on-error the
other units' steps go on, the check's dependents (the unit's save) are skipped, and the program
itself never raises on what a device answered (an exception in an apply cancels the whole update).
A failed check is not stored, or keeps its old input on a failed update, so every later update
runs it again until the command is re-run (`pulumi up --replace <urn>`, named in the message).

Known limit: with --continue-on-error the engine holds back the end-of-update deletions that an
errored step's old state depends on. A check that never passed has no old state, so its failure
holds back nothing: a save-on-destroy copy replaced in the same update is still deleted, and saves
what the refused commands left (CHANGELOG, "Known limit"). Without --continue-on-error the update
stops at the failed step and deletes nothing.

Ref: F5Networks/terraform-provider-bigip@v1.26.0:bigip/resource_bigip_command.go (create stores
     command_result, read is a no-op, delete ignores the output)
Ref: pulumi/pulumi-command@v1.2.1:provider/pkg/provider/local/commandController.go (update runs
     `create` when no `update` is given; a non-zero exit fails the step)
Ref: pulumi/pulumi@v3.259.0:pkg/resource/deploy/deployment_executor.go (continue-on-error skips
     the steps that depend on an errored step; performPostSteps holds back the deletions only of
     what an errored step's state in the old snapshot depends on), step_executor.go
     (cancelDueToError cancels the update without --continue-on-error)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_f5bigip as f5bigip

INTERPRETER = ("/bin/bash", "-c")


def script() -> str:
    """The check, as the step's `create` command."""
    return resources.files(__package__).joinpath("tmsh_check.sh").read_text(encoding="utf-8")


def environment(
    what: str, urn: str, commands: Sequence[str], results: Sequence[str] | None
) -> dict[str, str]:
    """The check's environment. Pure: test it directly. A command without a stored result has no
    CPAAS_CHECK_OUTPUT_<i>, which the check reports as a failure."""
    env = {"CPAAS_CHECK_WHAT": what, "CPAAS_CHECK_URN": urn, "CPAAS_CHECK_COUNT": str(len(commands))}
    outputs = list(results or ())
    for i, text in enumerate(commands):
        env[f"CPAAS_CHECK_COMMAND_{i}"] = text
        if i < len(outputs):
            env[f"CPAAS_CHECK_OUTPUT_{i}"] = outputs[i] or ""
    return env


@dataclass(frozen=True)
class CheckArgs:
    # The command whose output is checked, and the commands it was given (in order).
    command: f5bigip.Command
    commands: tuple[str, ...]
    # What the commands do, for the message (e.g. "unit onprem-syd: BGP configuration").
    what: str


def output_check(name: str, args: CheckArgs, opts: pulumi.ResourceOptions) -> command.local.Command:
    """The check step for `args.command`; give it `parent` in `opts`. Depend on it to run only
    after the device accepted the commands."""

    def env(urn_and_results: list[Any]) -> dict[str, str]:
        urn, results = urn_and_results
        return environment(args.what, urn, args.commands, results)

    return command.local.Command(
        name,
        create=script(),
        environment=pulumi.Output.all(args.command.urn, args.command.command_results).apply(env),
        interpreter=list(INTERPRETER),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[args.command])),
    )
