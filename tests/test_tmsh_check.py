"""The check of what the BIG-IP answered to tmsh commands (BGP, `save sys config`), run for real
with bash on sample outputs: the script a `command:local:Command` step runs after each command."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import pytest

from components.bigip import tmsh_check
from tests.support import run_script

WHAT = "unit u1: BGP configuration"
URN = "urn:pulumi:prod::cpaas::cpaas:bigip:BigipBgp$f5bigip:index/command:Command::u1-bgp-apply"
COMMANDS = (
    "modify sys db tmrouted.tmos.routing value enable",
    'run util bash -c "if tmsh list net routing bgp /Common/cpaas-u1 >/dev/null 2>&1; then '
    'tmsh delete net routing bgp /Common/cpaas-u1; fi"',
    "create net routing bgp /Common/cpaas-u1 local-as 64513 neighbor add { 10.0.0.1 { peer-group calico } }",
)


def run(commands: Sequence[str], outputs: Sequence[str] | None) -> subprocess.CompletedProcess[str]:
    """The script as the step runs it: `/bin/bash -c <script>` with the step's environment."""
    env = tmsh_check.environment(WHAT, URN, commands, outputs)
    return run_script(tmsh_check.INTERPRETER, tmsh_check.script(), env)


def test_the_check_passes_when_no_command_printed_a_tmsh_error() -> None:
    done = run(COMMANDS, ["", "", ""])
    assert done.returncode == 0, done.stderr
    saved = run(
        ["save sys config"],
        ["Saving running configuration...\n  /config/bigip.conf\n  /config/bigip_base.conf\n"],
    )
    assert saved.returncode == 0, saved.stderr


@pytest.mark.parametrize(
    "output",
    [
        'Syntax Error: "graceful-reset" unknown property',
        "01070734:3: Configuration error: invalid local-as",
        "some context\n01020036:3: The requested BGP instance (/Common/cpaas-u1) was not found.",
        "Error: the routing daemon is not running",
        # Ref: F5Networks/f5-ansible@da26e796 (1.34.1) ansible_collections/f5networks/f5_modules/plugins/
        #      modules/bigip_command.py (NoChangeReporter: "Data Input Error: shared.*already exists";
        #      _check_known_errors: "usage: tmsh"), modules/bigip_config.py (_detect_errors:
        #      "Unexpected Error:")
        'Data Input Error: shared alias "calico" already exists',
        "Data Input Error: Invalid value for local-as",
        "Unexpected Error: Loading configuration process failed.",
        "some context\nUnexpected Error: the daemon is gone",
        "usage: tmsh [-a] [-c <command>] [-h] [-q] [<command>]",
    ],
    ids=[
        "syntax-error",
        "message-code",
        "message-code-on-a-later-line",
        "error-line",
        "data-input-error",
        "data-input-error-invalid-value",
        "unexpected-error",
        "unexpected-error-on-a-later-line",
        "tmsh-usage-instead-of-running-the-command",
    ],
)
def test_fails_when_a_command_printed_a_tmsh_error_naming_the_command_and_how_to_run_it_again(
    output: str,
) -> None:
    done = run(COMMANDS, ["", "", output])
    assert done.returncode != 0
    message = done.stderr.strip()
    assert message.startswith(f"cpaas: {WHAT} failed on the BIG-IP: '{COMMANDS[2]}': ")
    assert " ".join(output.split())[:40] in message
    assert message.endswith(f"Fix the cause, then run the commands again with: pulumi up --replace '{URN}'")
    assert COMMANDS[0] not in message  # only the failed command is named


def test_fails_for_every_failed_command_in_one_message() -> None:
    done = run(COMMANDS, ["Error: no", "", "Syntax Error: x"])
    assert done.returncode != 0
    assert f"'{COMMANDS[0]}': Error: no; '{COMMANDS[2]}': Syntax Error: x." in done.stderr


def test_fails_when_a_commands_output_was_not_recorded() -> None:
    for outputs in (None, ["", ""]):
        done = run(COMMANDS, outputs)
        assert done.returncode != 0
        assert f"'{COMMANDS[2]}': no output was recorded" in done.stderr


def test_ordinary_output_that_merely_looks_alike_is_not_a_failure() -> None:
    outputs = ["checked: 0 errors\nErrors: 0", "id deadbeef1:2 ok", "no Error here; 1234567:1: seven digits"]
    done = run(COMMANDS, outputs)
    assert done.returncode == 0, done.stderr


def test_a_long_output_is_cut_in_the_message() -> None:
    done = run(["save sys config"], ["Error: " + "x" * 2000])
    assert done.returncode != 0
    assert "x" * 300 not in done.stderr and "x" * 250 in done.stderr


def test_the_environment_numbers_each_command_with_its_output() -> None:
    env = tmsh_check.environment(WHAT, URN, ["a", "b"], ["out a", ""])
    assert env == {
        "CPAAS_CHECK_WHAT": WHAT,
        "CPAAS_CHECK_URN": URN,
        "CPAAS_CHECK_COUNT": "2",
        "CPAAS_CHECK_COMMAND_0": "a",
        "CPAAS_CHECK_OUTPUT_0": "out a",
        "CPAAS_CHECK_COMMAND_1": "b",
        "CPAAS_CHECK_OUTPUT_1": "",
    }
    assert "CPAAS_CHECK_OUTPUT_1" not in tmsh_check.environment(WHAT, URN, ["a", "b"], ["out a"])
