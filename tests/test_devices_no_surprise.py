"""No surprise for stacks with a BIG-IP per unit (issue 16, item 4).

Today's prod (tests/fixtures/prod-before-devices.stack.yaml: Pulumi.prod.yaml before shared devices,
every unit with an inline `bigip:`) rendered by this code keeps every BIG-IP resource's URN, parent,
provider and inputs as main's code rendered them (tests/fixtures/prod-before-devices.bigip.json).
The save commands' replacement triggers are the one difference, by design: they digest the code that
writes to the BIG-IP (persist.code_digest) and the unit's config model, so a release that changes that
code saves each device once more (persist.py); nothing on the device is replaced.

Prod itself moved onprem-syd onto the shared device syd-dc1-bigip: its device-wide resources moved
under SharedDevice with aliases to their old URNs (test_devices.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.support import BEFORE_DEVICES, ROOT
from tools import engine

FIXTURE = ROOT / "tests" / "fixtures" / "prod-before-devices.bigip.json"
KINDS = ("f5bigip:", "pulumi:providers:f5bigip", "command:local:Command")
# The saves' triggers digest the BIG-IP code and the unit's config model (persist.unit_digest).
RESAVED = ("-bigip-save-on-destroy", "-bigip-save-command")


# Run in a checkout of the base revision, with that revision's code: prints bigip_state as JSON.
_IN_BASE = """
import json, sys
from pathlib import Path
from components import config
from tests.support import run_build
from tools import stackfile
KINDS = {kinds!r}
run = run_build(config.parse_stack(stackfile.raw_config(Path(sys.argv[1]))), "prod")
print(json.dumps({{r.urn: {{"inputs": r.inputs, "parent": r.parent,
    "provider": r.provider.rsplit("::", 1)[0] if r.provider else "",
    "replacementTrigger": r.options["replacementTrigger"]}}
    for r in run.registrations if r.type.startswith(KINDS)}}))
"""


def write_fixture(rev: str) -> None:
    """Render the stack file BEFORE_DEVICES with the code of git revision `rev` (a temporary
    `git archive` copy, this interpreter) and write FIXTURE:
    `python -m tests.test_devices_no_surprise REV`."""
    commit = subprocess.run(["git", "rev-parse", rev], cwd=ROOT, capture_output=True, text=True, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "archive", commit.stdout.strip()], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        out = subprocess.run(
            [sys.executable, "-c", _IN_BASE.format(kinds=KINDS), str(BEFORE_DEVICES)],
            cwd=Path(tmp),
            capture_output=True,
            text=True,
            check=True,
        )
    base = commit.stdout.strip()[:7]
    about = (
        f"The BIG-IP side of {BEFORE_DEVICES.relative_to(ROOT)} rendered by the code of {base} "
        "(before shared devices) under the mock engine, by URN; written by "
        "`python -m tests.test_devices_no_surprise REV`."
    )
    doc = {"about": about, "resources": json.loads(out.stdout)}
    FIXTURE.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def bigip_state(run: engine.Run) -> dict[str, dict[str, Any]]:
    """The BIG-IP side of a render, by URN, in the fixture's form."""
    return {
        r.urn: {
            "inputs": r.inputs,
            "parent": r.parent,
            "provider": r.provider.rsplit("::", 1)[0] if r.provider else "",
            "replacementTrigger": r.options["replacementTrigger"],
        }
        for r in run.registrations
        if r.type.startswith(KINDS)
    }


@pytest.fixture(scope="module")
def before_and_now(prod_before_devices: engine.Run) -> tuple[dict[str, Any], dict[str, Any]]:
    before = json.loads(FIXTURE.read_text(encoding="utf-8"))["resources"]
    now = bigip_state(prod_before_devices)
    return before, json.loads(json.dumps(now))


def test_todays_prod_keeps_every_bigip_urn(before_and_now: tuple[dict[str, Any], dict[str, Any]]) -> None:
    before, now = before_and_now
    assert len(before) == 83  # prod's units' BIG-IP objects, providers and local commands
    assert sorted(now) == sorted(before)


def test_todays_prod_keeps_every_bigip_resources_inputs_parent_and_provider(
    before_and_now: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    before, now = before_and_now
    for urn, old in before.items():
        for key in ("inputs", "parent", "provider"):
            assert now[urn][key] == old[key], (urn, key)


def test_todays_prod_changes_only_the_save_triggers_that_digest_the_bigip_code(
    before_and_now: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    before, now = before_and_now
    changed = {
        urn.rsplit("::", 1)[1]
        for urn in before
        if now[urn]["replacementTrigger"] != before[urn]["replacementTrigger"]
    }
    assert changed and all(name.endswith(RESAVED) for name in changed), changed
    triggered = {urn.rsplit("::", 1)[1] for urn in before if before[urn]["replacementTrigger"] is not None}
    assert triggered == changed  # nothing else carries a replacement trigger


if __name__ == "__main__":
    write_fixture(sys.argv[1] if len(sys.argv) > 1 else "HEAD")


# ---------------------------------------------------------------------------------------------
# The plan of the move itself: today's prod (every unit its own BIG-IP) to the stack file as it is
# (onprem-syd on the shared device syd-dc1-bigip, onprem-syd-b beside it, mqtt on both clusters)
# ---------------------------------------------------------------------------------------------


def test_the_plan_of_moving_prod_onto_the_shared_device_replaces_and_deletes_no_bigip_object(
    prod_before_devices: engine.Run,
) -> None:
    from tests.support import entries, placeholder_inputs, placeholder_refs, stack
    from tools import plan

    before = entries(prod_before_devices)
    head = stack("prod")
    steps = plan.plan_between(
        before, head, "prod", inputs=lambda: placeholder_inputs(head), stack_outputs=placeholder_refs(head)
    )
    on_device = KINDS
    touched = sorted(
        (s.urn.rsplit("::", 1)[1], s.op, s.phase)
        for s in steps
        if s.type.startswith(on_device) and s.op in ("replace", "delete")
    )
    # Only the device's two saves are replaced (each old copy, still named for onprem-syd, goes
    # at the end): their triggers digest the units' config, which gained onprem-syd-b. The BGP
    # instance, the provider and every object are kept, found by their aliases (the children by
    # the aliases they inherit from their moved parents) and at most updated in place.
    assert touched == [
        ("onprem-syd-bigip-save-command", "replace", plan.DELETE_REPLACED),
        ("onprem-syd-bigip-save-on-destroy", "replace", plan.DELETE_REPLACED),
        ("syd-dc1-bigip-save-command", "replace", plan.CREATE_REPLACEMENT),
        ("syd-dc1-bigip-save-on-destroy", "replace", plan.CREATE_REPLACEMENT),
    ], touched
    created = [s.urn.rsplit("::", 1)[1] for s in steps if s.type.startswith(on_device) and s.op == "create"]
    assert created and all(name.startswith("onprem-syd-b-") for name in created), created
