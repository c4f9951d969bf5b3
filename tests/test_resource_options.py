"""resources.json records the resource options an offline plan needs (issue 11, item 3): what the
engine reads from the registration request besides the inputs. The names are the request's
fields (pulumi/runtime/proto/resource_pb2 RegisterResourceRequest)."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_command as command
import pytest

from tools import engine, render

OPTION_KEYS = {
    "additionalSecretOutputs",
    "aliases",
    "deleteBeforeReplace",
    "deleteBeforeReplaceDefined",
    "deletedWith",
    "dependsOn",
    "ignoreChanges",
    "propertyDependencies",
    "protect",
    "read",
    "replaceOnChanges",
    "replaceWith",
    "replacementTrigger",
    "retainOnDelete",
}


def _entry(run: engine.Run, name: str) -> dict[str, Any]:
    """The resources.json entry of `name`, as the render writes it (through JSON)."""
    text = json.dumps(render.resource_entry(run.get(name)), sort_keys=True)
    return dict(json.loads(text))


@pytest.fixture(scope="module")
def tiny() -> engine.Run:
    """Options cpaas does not use today, set on a tiny program run by the same engine."""

    def program() -> None:
        first = command.local.Command("first", create="true")
        second = command.local.Command(
            "second",
            create="true",
            opts=pulumi.ResourceOptions(depends_on=[first], delete_before_replace=False),
        )
        command.local.Command(
            "kept",
            create="true",
            environment={"AFTER": second.stdout},
            opts=pulumi.ResourceOptions(
                protect=True,
                retain_on_delete=True,
                depends_on=[first],
                deleted_with=first,
                replace_on_changes=["environment"],
                aliases=[pulumi.Alias(name="old-kept")],
            ),
        )

    return engine.run(program)


def test_every_resources_json_entry_has_the_same_option_keys(prod: engine.Run, dev: engine.Run) -> None:
    for run in (prod, dev):
        for reg in run.registrations:
            entry = render.resource_entry(reg)
            assert set(entry["options"]) == OPTION_KEYS, reg.name
            assert list(entry["options"]) == sorted(OPTION_KEYS), reg.name


def test_the_existing_resources_json_keys_stay_as_they_were(prod: engine.Run) -> None:
    entry = render.resource_entry(prod.registrations[0])
    assert set(entry) == {"urn", "type", "name", "parent", "provider", "dependencies", "inputs", "options"}


def test_delete_before_replace_and_ignore_changes_of_the_waf_policy_reach_resources_json(
    prod: engine.Run,
) -> None:
    [policy] = [r for r in prod.by_type("f5bigip:index/wafPolicy:WafPolicy")][:1]
    options = _entry(prod, policy.name)["options"]
    assert options["deleteBeforeReplace"] is True
    assert options["ignoreChanges"] == ["templateName"]


def test_replace_on_changes_of_the_snat_cleanup_command_reaches_resources_json(prod: engine.Run) -> None:
    [name, *_] = [r.name for r in prod.registrations if r.name.endswith("-snat-translations-cleanup")]
    assert _entry(prod, name)["options"]["replaceOnChanges"] == ["commands"]


def test_the_sdk_added_replace_on_changes_of_a_command_trigger_reaches_resources_json(
    prod: engine.Run,
) -> None:
    """pulumi-command's SDK adds `triggers[*]` itself (its schema marks triggers replaceOnChanges)."""
    [reg, *_] = prod.by_type("command:local:Command")
    assert "triggers[*]" in _entry(prod, reg.name)["options"]["replaceOnChanges"]


def test_the_replacement_trigger_of_the_config_save_reaches_resources_json(prod: engine.Run) -> None:
    saves = [r for r in prod.by_type("f5bigip:index/command:Command") if r.options["replacementTrigger"]]
    assert saves
    for reg in saves:
        assert _entry(prod, reg.name)["options"]["replacementTrigger"] == reg.options["replacementTrigger"]


def test_aliases_the_kubernetes_sdk_adds_reach_resources_json(dev: engine.Run) -> None:
    [deployment, *_] = dev.by_type("kubernetes:apps/v1:Deployment")
    aliases = _entry(dev, deployment.name)["options"]["aliases"]
    assert {"spec": {"type": "kubernetes:apps/v1beta1:Deployment", "parentUrn": ""}} in aliases


def test_depends_on_lists_the_dependencies_no_input_explains(prod: engine.Run) -> None:
    """The request carries one `dependencies` list (depends_on and input dependencies together) and
    the input ones per property; dependsOn is the rest."""
    [pool, *_] = prod.by_type("f5bigip:ltm/poolAttachment:PoolAttachment")
    entry = _entry(prod, pool.name)
    assert entry["dependencies"] == pool.dependencies
    assert set(entry["options"]["dependsOn"]) <= set(entry["dependencies"])
    assert entry["options"]["dependsOn"], (
        "the pool attachment waits for its egress predecessors by depends_on"
    )


def test_protect_retain_on_delete_deleted_with_and_a_name_alias_reach_resources_json(
    tiny: engine.Run,
) -> None:
    first, second = tiny.get("first"), tiny.get("second")
    options = _entry(tiny, "kept")["options"]
    assert options["protect"] is True
    assert options["retainOnDelete"] is True
    assert options["deletedWith"] == first.urn
    assert sorted(options["replaceOnChanges"]) == ["environment", "triggers[*]"]  # the SDK adds triggers
    assert options["aliases"] == [{"spec": {"name": "old-kept", "parentUrn": ""}}]
    # `second` is an input dependency (environment), `first` an explicit one.
    assert options["dependsOn"] == [first.urn]
    assert _entry(tiny, "kept")["dependencies"] == sorted([first.urn, second.urn])
    assert _entry(tiny, "second")["options"]["dependsOn"] == [first.urn]


def test_unset_options_are_recorded_as_their_defaults(tiny: engine.Run) -> None:
    options = _entry(tiny, "first")["options"]
    assert options["protect"] is False
    assert options["retainOnDelete"] is False
    assert options["deleteBeforeReplace"] is False
    assert options["deletedWith"] == ""
    assert options["dependsOn"] == []
    assert options["replaceWith"] == []
    assert options["replacementTrigger"] is None


def test_an_explicit_delete_before_replace_false_is_told_apart_from_an_unset_one(tiny: engine.Run) -> None:
    """The engine lets a defined deleteBeforeReplace, false included, override the provider."""
    second, first = _entry(tiny, "second")["options"], _entry(tiny, "first")["options"]
    assert (second["deleteBeforeReplace"], second["deleteBeforeReplaceDefined"]) == (False, True)
    assert (first["deleteBeforeReplace"], first["deleteBeforeReplaceDefined"]) == (False, False)


def test_property_dependencies_name_the_resources_each_input_comes_from(tiny: engine.Run) -> None:
    options = _entry(tiny, "kept")["options"]
    assert options["propertyDependencies"] == {"environment": [tiny.get("second").urn]}
