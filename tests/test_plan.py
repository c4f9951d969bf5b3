"""The offline plan (tools/plan.py): what `pulumi up` would do from one render of a stack to the
program now, in the engine's order. Lifecycle tests on prod assert each whole plan: exactly the
ops on the resources a change touches, and nothing else."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s
import pulumi_tls as tls
import pytest

from components import config
from tests.support import entries, placeholder_inputs, placeholder_refs, raw_stack, stack
from tools import engine, graph, plan, prdiff, replicate

PROD_REFS = placeholder_refs(stack("prod"))
ROOT = Path(__file__).resolve().parent.parent
GSLB_AS3 = "urn:pulumi:prod::cpaas::cpaas:gslb:Gslb$f5bigip:index/as3:As3::gslb-as3"


@pytest.fixture(scope="module")
def prod_state(prod: engine.Run) -> list[dict[str, Any]]:
    return entries(prod)


def prod_plan(
    state: list[dict[str, Any]], raw: Mapping[str, Any], replace: Sequence[str] = ()
) -> list[plan.Step]:
    head = config.parse_stack(dict(raw))
    return plan.plan_between(
        state, head, "prod", inputs=lambda: placeholder_inputs(head), stack_outputs=PROD_REFS, replace=replace
    )


def ops(steps: Sequence[plan.Step]) -> dict[str, str]:
    """urn -> op, one per resource (a replacement's two steps are one replace)."""
    out: dict[str, str] = {}
    for step in steps:
        assert out.get(step.urn, step.op) == step.op, step.urn
        out[step.urn] = step.op
    return out


def named(steps: Sequence[plan.Step], op: str) -> set[str]:
    return {s.urn.rsplit("::", 1)[-1] for s in steps if s.op == op}


def unit_urns(state: Sequence[Mapping[str, Any]], unit: str) -> set[str]:
    """The unit's resources: under its AtomicUnit, and its certificates and keys in the PKI."""
    regs = [engine.Registration(e["urn"], e["type"], e["name"], e["parent"], "", [], True, {}) for e in state]
    by_urn = {r.urn: r for r in regs}
    return {r.urn for r in regs if graph.unit_of(r, by_urn) == unit or r.name.startswith(f"pki-{unit}-")}


# ---------------------------------------------------------------------------------------------
# Lifecycle on prod
# ---------------------------------------------------------------------------------------------


def test_an_unchanged_stack_plans_no_step(prod_state: list[dict[str, Any]]) -> None:
    assert prod_plan(prod_state, raw_stack("prod")) == []


def without_unit(raw: dict[str, Any], unit: str) -> dict[str, Any]:
    raw["units"] = [u for u in raw["units"] if u["name"] != unit]
    for wide in raw["gslb"]["wideIps"]:
        if "units" in wide:
            wide["units"] = [u for u in wide["units"] if u != unit]
        wide.get("ratios", {}).pop(unit, None)
    return raw


@pytest.fixture(scope="module")
def removed(prod_state: list[dict[str, Any]]) -> list[plan.Step]:
    """The plan of prod without its unit azure-mel."""
    return prod_plan(prod_state, without_unit(raw_stack("prod"), "azure-mel"))


def test_removing_a_unit_deletes_exactly_its_resources_and_updates_only_the_gslb_declaration(
    prod_state: list[dict[str, Any]], removed: list[plan.Step]
) -> None:
    steps = removed
    planned = ops(steps)
    assert {u for u, op in planned.items() if op == "delete"} == unit_urns(prod_state, "azure-mel")
    assert {u: op for u, op in planned.items() if op != "delete"} == {GSLB_AS3: "update"}
    # Deletes come last, after the update.
    assert [s.op for s in steps] == ["update"] + ["delete"] * (len(steps) - 1)


def test_removing_a_unit_deletes_its_bigip_objects_before_their_partition_and_saves_after_them(
    prod_state: list[dict[str, Any]], removed: list[plan.Step]
) -> None:
    steps = removed
    at = {s.urn.rsplit("::", 1)[-1]: i for i, s in enumerate(steps)}
    partition, save = at["azure-mel-bigip-pulumi-partition"], at["azure-mel-bigip-save-on-destroy"]
    state = {e["urn"]: e for e in prod_state}
    bigip = [s for s in steps if s.type.startswith("f5bigip:")]
    inside = [
        s.urn.rsplit("::", 1)[-1]
        for s in bigip
        if state[s.urn]["inputs"].get("partition") == "cpaas-azure-mel"
        or "/cpaas-azure-mel/" in json.dumps(state[s.urn]["inputs"])
    ]
    assert len(inside) >= 10  # the egress gateway's objects, and the command that clears its SNAT
    assert [n for n in inside if at[n] > partition] == []
    # The destroy-time save runs after every BIG-IP object of the unit is gone, and the unit's
    # BIG-IP providers go after everything they serve.
    assert [s.urn for s in bigip if at[s.urn.rsplit("::", 1)[-1]] > save] == []
    providers = [at[n] for n in at if n in ("azure-mel-bigip-provider", "azure-mel-egress-identity-provider")]
    assert len(providers) == 2 and min(providers) > save


def test_adding_a_unit_with_replicate_only_creates_it_and_updates_the_gslb_declaration(
    prod_state: list[dict[str, Any]],
) -> None:
    raw = raw_stack("prod")
    # A unit with a BIG-IP of its own (onprem-syd's is shared: a replica of it gets its own device).
    grown = replicate.apply(raw, replicate.derive(raw, "aws-syd", "aws-mel"))
    steps = prod_plan(prod_state, grown)
    planned = ops(steps)
    assert {u: op for u, op in planned.items() if op != "create"} == {GSLB_AS3: "update"}
    created = [s for s in steps if s.op == "create"]
    assert all("aws-mel" in s.urn.rsplit("::", 1)[-1] for s in created)
    # A copy of its source, resource for resource.
    source = unit_urns(prod_state, "aws-syd")
    assert sorted(s.type for s in created) == sorted(e["type"] for e in prod_state if e["urn"] in source)


def test_moving_an_apps_vip_changes_only_that_unit_and_the_gslb_declaration(
    prod_state: list[dict[str, Any]],
) -> None:
    raw = raw_stack("prod")
    httpbin = next(a for a in raw["units"][0]["apps"] if a["name"] == "httpbin")
    assert raw["units"][0]["name"] == "aws-syd" and httpbin["vip"] == "10.10.17.11"
    httpbin["vip"] = "10.10.17.21"
    steps = prod_plan(prod_state, raw)
    assert ops(steps) == {
        GSLB_AS3: "update",
        **{
            u: "update"
            for u in _urns(prod_state, "aws-syd-ingress-httpbin-virtualserver", "aws-syd-bigip-save-check")
        },
        # The unit's config is part of both save commands' triggers: the device saves again.
        **{
            u: "replace"
            for u in _urns(prod_state, "aws-syd-bigip-save-command", "aws-syd-bigip-save-on-destroy")
        },
    }
    vs = next(s for s in steps if s.urn.endswith("aws-syd-ingress-httpbin-virtualserver"))
    assert vs.reasons == ("spec.virtualServerAddress",)


def _urns(state: Sequence[Mapping[str, Any]], *names: str) -> list[str]:
    found = [e["urn"] for e in state if e["name"] in names]
    assert len(found) == len(names), names
    return found


def _units(*, egress: bool = False) -> list[str]:
    """prod's units (with `egress`: those with a BIG-IP egress gateway)."""
    return [u.name for u in stack("prod").units if u.egress is not None or not egress]


def _per_unit(*names: str, egress: bool = False) -> list[str]:
    return [n.replace("UNIT", u) for u in _units(egress=egress) for n in names]


def _per_device(*roles: str) -> list[str]:
    """A role of each BIG-IP (`save-command`): a unit's own device's resources are named
    `<unit>-bigip-<role>`, a shared one's `<device>-<role>` (cpaas:bigipDevices)."""
    devices = {u.bigip.device or f"{u.name}-bigip" for u in stack("prod").units if u.bigip is not None}
    return [f"{d}-{role}" for d in sorted(devices) for role in roles]


def _http_apps(unit: str) -> list[str]:
    """The unit's HTTP apps: each has a leaf certificate and a TLS Secret for its ingress."""
    return [a.name for a in stack("prod").unit(unit).apps if a.kind in ("http-mesh", "http-nginx")]


def _app_leaves(unit: str, parts: Sequence[str] = ("",)) -> list[str]:
    return [f"pki-{unit}-app-{app}{part}" for app in _http_apps(unit) for part in parts]


def _app_secrets(unit: str) -> list[str]:
    return [f"{unit}-ingress-{app}-tls" for app in _http_apps(unit)]


@pytest.fixture(scope="module")
def new_key_algorithm(prod_state: list[dict[str, Any]]) -> list[plan.Step]:
    """The plan of prod with pki.keyAlgorithm RSA-3072 (ECDSA-P256 now)."""
    raw = raw_stack("prod")
    assert raw["pki"].get("keyAlgorithm", "ECDSA-P256") == "ECDSA-P256"
    raw["pki"]["keyAlgorithm"] = "RSA-3072"
    return prod_plan(prod_state, raw)


@pytest.fixture(scope="module")
def rotated_intermediate(prod_state: list[dict[str, Any]]) -> list[plan.Step]:
    """The plan of `pulumi up --replace` aws-syd's intermediate."""
    return prod_plan(prod_state, raw_stack("prod"), replace=_urns(prod_state, "pki-aws-syd-intermediate"))


def test_a_new_key_algorithm_replaces_every_key_and_certificate_and_what_holds_them(
    prod_state: list[dict[str, Any]], new_key_algorithm: list[plan.Step]
) -> None:
    steps = new_key_algorithm
    parts = ("", "-csr", "-key")
    replaced = _per_unit(*(f"pki-UNIT-intermediate{part}" for part in parts))
    replaced += _per_unit(*(f"pki-UNIT-bigip-egress{part}" for part in parts), egress=True)
    replaced += _per_device("save-command")
    secrets = _per_unit("UNIT-mesh-cacerts")
    for unit in _units():
        replaced += _app_leaves(unit, parts)
        secrets += _app_secrets(unit)
    updated = _per_unit("UNIT-mesh-istiod", "UNIT-reencrypt-org-root")
    updated += _per_unit("UNIT-egress-identity", "UNIT-egress-mesh-ca", egress=True)
    updated += _per_device("save-check")
    assert ops(steps) == {
        **{u: "replace" for u in _urns(prod_state, "pki-root", "pki-root-key", *replaced)},
        **{u: "update" for u in _urns(prod_state, *updated, *secrets)},
    }
    # The Secrets keep their names and are updated in place (the unit's provider sets
    # enableSecretMutable): istiod, CIS and the gateways never see them missing. Their
    # stringData is one secret value, unknown until the new PEMs exist.
    for name in ("aws-syd-mesh-cacerts", "aws-syd-ingress-httpbin-tls"):
        held = [(s.op, s.phase, s.reasons) for s in steps if s.urn.endswith(f"::{name}")]
        assert held == [("update", "", ("stringData",))], name


def test_rotating_a_units_intermediate_reissues_its_leaves_and_rolls_istiod(
    prod_state: list[dict[str, Any]], rotated_intermediate: list[plan.Step]
) -> None:
    intermediate = _urns(prod_state, "pki-aws-syd-intermediate")
    steps = rotated_intermediate
    replaced = [*_app_leaves("aws-syd"), "pki-aws-syd-bigip-egress"]
    updated = [
        "aws-syd-mesh-istiod",
        "aws-syd-egress-identity",
        "aws-syd-egress-mesh-ca",
        "aws-syd-bigip-save-check",
        "aws-syd-mesh-cacerts",
        *_app_secrets("aws-syd"),
    ]
    assert ops(steps) == {
        intermediate[0]: "replace",
        **{u: "replace" for u in _urns(prod_state, *replaced, "aws-syd-bigip-save-command")},
        **{u: "update" for u in _urns(prod_state, *updated)},
    }
    first = next(s for s in steps if s.urn == intermediate[0])
    assert first.reasons == ("targeted: `pulumi up --replace`",)
    # The leaves are re-issued because the CA certificate they are signed with is new.
    leaf = next(
        s
        for s in steps
        if s.urn.endswith("::pki-aws-syd-bigip-egress") and s.phase == plan.CREATE_REPLACEMENT
    )
    assert any(r.startswith("caCertPem changed") for r in leaf.reasons), leaf.reasons


def test_no_step_of_a_new_key_algorithm_or_an_intermediate_rotation_deletes_a_kubernetes_secret(
    new_key_algorithm: list[plan.Step], rotated_intermediate: list[plan.Step]
) -> None:
    for steps in (new_key_algorithm, rotated_intermediate):
        secrets = [s for s in steps if s.type == "kubernetes:core/v1:Secret"]
        assert len(secrets) >= 3
        assert [(s.urn, s.op, s.phase) for s in secrets if s.op != "update"] == []


def _before_mutable_secrets(state: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The prod state as the render before this change holds it: the kubernetes providers
    without enableSecretMutable (the only input the change adds)."""
    out = json.loads(json.dumps(state))
    providers = [e for e in out if e["type"] == "pulumi:providers:kubernetes"]
    assert len(providers) == len(_units())
    assert all(e["inputs"].get("enableSecretMutable") == "true" for e in providers)
    for entry in providers:
        del entry["inputs"]["enableSecretMutable"]
    return out


def test_the_first_update_with_mutable_secrets_only_updates_each_kubernetes_provider(
    prod_state: list[dict[str, Any]],
) -> None:
    steps = prod_plan(_before_mutable_secrets(prod_state), raw_stack("prod"))
    providers = [e["urn"] for e in prod_state if e["type"] == "pulumi:providers:kubernetes"]
    assert ops(steps) == dict.fromkeys(providers, "update")
    assert {s.reasons for s in steps} == {("enableSecretMutable",)}


def test_a_rotation_in_that_first_update_already_updates_the_secrets_in_place(
    prod_state: list[dict[str, Any]], rotated_intermediate: list[plan.Step]
) -> None:
    # The engine configures an updated provider with its new inputs before it diffs what the
    # provider serves. Ref: pulumi/pulumi v3.259.0 pkg/resource/deploy/providers/registry.go Update.
    intermediate = _urns(prod_state, "pki-aws-syd-intermediate")
    steps = prod_plan(_before_mutable_secrets(prod_state), raw_stack("prod"), replace=intermediate)
    providers = [e["urn"] for e in prod_state if e["type"] == "pulumi:providers:kubernetes"]
    assert ops(steps) == {**ops(rotated_intermediate), **dict.fromkeys(providers, "update")}


def test_an_istio_patch_bump_only_updates_the_helm_releases(prod_state: list[dict[str, Any]]) -> None:
    raw = raw_stack("prod")
    for unit in raw["units"]:
        assert unit["mesh"].get("istioVersion", "1.30.3") == "1.30.3"
        unit["mesh"]["istioVersion"] = "1.30.4"
    steps = prod_plan(prod_state, raw)
    releases = _per_unit("UNIT-mesh-base", "UNIT-mesh-istiod", "UNIT-mesh-gateway")
    assert ops(steps) == {u: "update" for u in _urns(prod_state, *releases)}
    assert {s.reasons for s in steps} == {("version",), ("values.global.tag", "version")}


def test_the_unit_fields_the_bigip_save_trigger_leaves_out_are_read_by_no_bigip_code() -> None:
    from components.bigip import persist

    code = "\n".join(text for path, text in persist.code_files() if path != "persist.py")
    left_out = [field for fields in persist.NOT_SENT.values() for field in fields]
    assert left_out == ["istio_version"]
    assert [f for f in left_out if f in code] == []


# ---------------------------------------------------------------------------------------------
# The engine's rules, on small programs
# ---------------------------------------------------------------------------------------------


def _state(program: Callable[[], None]) -> list[dict[str, Any]]:
    return entries(engine.run(_returning(program)))


def _returning(program: Callable[[], None]) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        program()
        return {}

    return run


def _plan(
    old: Callable[[], None], new: Callable[[], None], replace: Sequence[str] = ()
) -> list[tuple[str, str, str]]:
    steps = plan.plan_program(_state(old), _returning(new), replace=replace)
    return [(s.urn.rsplit("::", 1)[-1], s.op, s.phase) for s in steps]


def _key_and_csr(algorithm: str, delete_first: bool) -> Callable[[], None]:
    def program() -> None:
        key = tls.PrivateKey(
            "key", algorithm=algorithm, opts=pulumi.ResourceOptions(delete_before_replace=delete_first)
        )
        tls.CertRequest("csr", private_key_pem=key.private_key_pem, subject={"common_name": "x"})

    return program


def test_a_replacement_creates_first_and_its_unknown_outputs_replace_what_uses_them_deleting_at_the_end() -> (
    None
):
    assert _plan(_key_and_csr("ECDSA", False), _key_and_csr("RSA", False)) == [
        ("key", "replace", plan.CREATE_REPLACEMENT),
        ("csr", "replace", plan.CREATE_REPLACEMENT),
        ("csr", "replace", plan.DELETE_REPLACED),  # a dependent goes before what it depends on
        ("key", "replace", plan.DELETE_REPLACED),
    ]


def test_a_delete_before_replace_deletes_its_replaced_dependents_and_itself_before_creating() -> None:
    assert _plan(_key_and_csr("ECDSA", True), _key_and_csr("RSA", True)) == [
        ("csr", "replace", plan.DELETE_REPLACED),
        ("key", "replace", plan.DELETE_REPLACED),
        ("key", "replace", plan.CREATE_REPLACEMENT),
        ("csr", "replace", plan.CREATE_REPLACEMENT),
    ]


def _configmap(
    kubeconfig: str, data: str, ignore: Sequence[str] = (), provider_name: str = "cluster"
) -> Callable[[], None]:
    def program() -> None:
        provider = k8s.Provider(provider_name, kubeconfig=kubeconfig)
        k8s.core.v1.ConfigMap(
            "settings",
            metadata={"name": "settings", "namespace": "default"},
            data={"mode": data},
            opts=pulumi.ResourceOptions(provider=provider, ignore_changes=list(ignore)),
        )

    return program


def _tls_secret(algorithm: str, mutable: bool | None) -> Callable[[], None]:
    """A TLS Secret holding a key's PEM: a new algorithm makes it unknown, so the change is seen
    (a secret that stays known is "[secret]" on both sides)."""

    def program() -> None:
        provider = k8s.Provider("cluster", kubeconfig="a", enable_secret_mutable=mutable)
        key = tls.PrivateKey("key", algorithm=algorithm)
        k8s.core.v1.Secret(
            "cert",
            metadata={"name": "cert", "namespace": "default"},
            type="kubernetes.io/tls",
            string_data={"tls.key": key.private_key_pem},
            opts=pulumi.ResourceOptions(provider=provider),
        )

    return program


def test_a_secret_s_new_data_replaces_it_deleting_first_unless_its_provider_has_mutable_secrets() -> None:
    key_replaced = [("key", "replace", plan.CREATE_REPLACEMENT), ("key", "replace", plan.DELETE_REPLACED)]
    for unset in (None, False):
        steps = _plan(_tls_secret("ECDSA", unset), _tls_secret("RSA", unset))
        assert [s for s in steps if s[0] == "cert"] == [
            ("cert", "replace", plan.DELETE_REPLACED),
            ("cert", "replace", plan.CREATE_REPLACEMENT),
        ]
    assert _plan(_tls_secret("ECDSA", True), _tls_secret("RSA", True)) == [
        key_replaced[0],
        ("cert", "update", ""),
        key_replaced[1],
    ]
    # Set in the same update: the provider is updated first and serves the Secret's diff.
    assert _plan(_tls_secret("ECDSA", None), _tls_secret("RSA", True)) == [
        ("cluster", "update", ""),
        key_replaced[0],
        ("cert", "update", ""),
        key_replaced[1],
    ]


def test_a_replaced_provider_replaces_every_resource_it_serves() -> None:
    steps = plan.plan_program(_state(_configmap("a", "x")), _returning(_configmap("b", "x")))
    assert [(s.urn.rsplit("::", 1)[-1], s.phase) for s in steps if s.op == "replace"] == [
        ("cluster", plan.CREATE_REPLACEMENT),
        ("settings", plan.DELETE_REPLACED),  # a fixed name: the provider deletes it first
        ("settings", plan.CREATE_REPLACEMENT),
        ("cluster", plan.DELETE_REPLACED),
    ]
    settings = next(s for s in steps if s.phase == plan.CREATE_REPLACEMENT and s.urn.endswith("::settings"))
    assert settings.reasons[0].startswith(
        "its provider urn:pulumi:test::cpaas::pulumi:providers:kubernetes::cluster"
    )


def test_a_resource_moved_to_another_provider_of_the_same_configuration_is_not_replaced() -> None:
    assert _plan(_configmap("a", "x"), _configmap("a", "x", provider_name="other")) == [
        ("other", "create", ""),
        ("cluster", "delete", ""),
    ]


def test_ignore_changes_hides_a_change_and_an_unignored_one_updates() -> None:
    assert _plan(_configmap("a", "x", ["data"]), _configmap("a", "y", ["data"])) == []
    # ConfigMap data replaces (pulumi-kubernetes without enableConfigMapMutable).
    assert ("settings", "replace", plan.CREATE_REPLACEMENT) in _plan(
        _configmap("a", "x"), _configmap("a", "y")
    )


def _command(trigger: str, name: str = "run", aliases: Sequence[str] = ()) -> Callable[[], None]:
    def program() -> None:
        opts = pulumi.ResourceOptions(
            replacement_trigger=trigger, aliases=[pulumi.Alias(name=a) for a in aliases]
        )
        command.local.Command(name, create="true", opts=opts)

    return program


def test_a_changed_replacement_trigger_replaces_and_an_alias_keeps_a_renamed_resource() -> None:
    assert _plan(_command("1"), _command("1")) == []
    assert _plan(_command("1"), _command("2")) == [
        ("run", "replace", plan.CREATE_REPLACEMENT),
        ("run", "replace", plan.DELETE_REPLACED),
    ]
    assert _plan(_command("1"), _command("1", "renamed", ["run"])) == []
    assert _plan(_command("1"), _command("1", "renamed")) == [
        ("renamed", "create", ""),
        ("run", "delete", ""),
    ]


def test_a_targeted_replace_replaces_only_that_resource_and_what_its_new_outputs_reach() -> None:
    old = _state(_key_and_csr("ECDSA", False))
    key = next(e["urn"] for e in old if e["name"] == "key")
    steps = plan.plan_program(old, _returning(_key_and_csr("ECDSA", False)), replace=[key])
    assert [(s.urn.rsplit("::", 1)[-1], s.op) for s in steps if s.phase != plan.DELETE_REPLACED] == [
        ("key", "replace"),
        ("csr", "replace"),
    ]


class _Box(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:test:Box", name, None, opts)
        k8s.core.v1.Namespace(
            f"{name}-ns", metadata={"name": "box"}, opts=pulumi.ResourceOptions(parent=self)
        )


def test_a_renamed_parent_with_an_alias_keeps_its_children_by_the_engines_inherited_aliases() -> None:
    # Ref: pulumi/pulumi v3.259.0 pkg/resource/deploy/step_generator.go generateAliases and
    # inheritedChildAlias: a child named "<parent>-x" of a parent found by an alias is looked up
    # as "<the parent's old name>-x" under the parent's old URN.
    def before() -> None:
        _Box("old")

    def after() -> None:
        _Box("new", pulumi.ResourceOptions(aliases=[pulumi.Alias(name="old")]))

    assert _plan(before, after) == []


class _Group(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:test:Group", name, None, opts)
        provider = k8s.Provider(f"{name}-cluster", kubeconfig="a", opts=pulumi.ResourceOptions(parent=self))
        ns = k8s.core.v1.Namespace(
            f"{name}-ns", metadata={"name": name}, opts=pulumi.ResourceOptions(parent=self, provider=provider)
        )
        k8s.core.v1.ConfigMap(
            f"{name}-cm",
            metadata={"name": "cm", "namespace": name},
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[ns]),
        )


def test_deletes_go_dependents_first_then_children_before_parents_and_providers_last() -> None:
    def both() -> None:
        _Group("a")
        _Group("b")

    def one() -> None:
        _Group("b")

    steps = _plan(both, one)
    assert steps == [
        ("a-cm", "delete", ""),
        ("a-ns", "delete", ""),
        ("a-cluster", "delete", ""),
        ("a", "delete", ""),
    ]


def test_the_plan_between_two_renders_sees_direct_changes_but_not_unknowns() -> None:
    old, new = _state(_key_and_csr("ECDSA", False)), _state(_key_and_csr("RSA", False))
    steps = plan.plan_entries(old, new)
    # Between renders the CSR's key PEM is "[secret]" on both sides: only the key is seen.
    assert [(s.urn.rsplit("::", 1)[-1], s.op, s.phase) for s in steps] == [
        ("key", "replace", plan.CREATE_REPLACEMENT),
        ("key", "replace", plan.DELETE_REPLACED),
    ]
    assert plan.counts(steps) == {"create": 0, "update": 0, "replace": 1, "delete": 0}


# ---------------------------------------------------------------------------------------------
# python -m tools.plan
# ---------------------------------------------------------------------------------------------

GIT = ["git", "-c", "user.name=cpaas test", "-c", "user.email=test@example.invalid"]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository of this checkout's files as they are now, in one commit; tools.plan's
    working tree."""
    copy = tmp_path / "repo"
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for rel in filter(None, listed.split("\0")):
        if (ROOT / rel).is_file():
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, copy / rel)
    for args in (["init", "--quiet"], ["add", "--all"], ["commit", "--quiet", "--message", "base"]):
        subprocess.run([*GIT, "-C", str(copy), *args], capture_output=True, check=True)
    monkeypatch.setattr(plan, "ROOT", copy)
    return copy


def test_the_cli_plans_the_working_tree_against_a_revision_and_writes_json(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_file = repo / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text().replace("replicas: 1\n", "replicas: 2\n"))
    out = tmp_path / "plan.json"
    assert plan.main(["--stack", "dev", "--json", str(out)]) == 0
    text, err = capsys.readouterr()
    nginx = (
        "urn:pulumi:dev::cpaas::cpaas:unit:AtomicUnit$cpaas:nginx:NginxIngress$kubernetes:helm.sh/v3:Release::"
        "dev-nginx-release"
    )
    assert text.startswith("Plan for stack `dev`: from its render at HEAD (")
    assert "\n0 to create, 1 to update, 0 to replace, 0 to delete (1 steps)\n" in text
    assert f"1. update               {nginx}\n" in text
    assert json.loads(out.read_text()) == {
        "stack": "dev",
        "base": "HEAD",
        "steps": [
            {
                "urn": nginx,
                "type": "kubernetes:helm.sh/v3:Release",
                "op": "update",
                "reasons": [
                    "values.controller.podDisruptionBudget.enabled",
                    "values.controller.replicaCount",
                ],
            }
        ],
    }
    assert "plan: rendering dev at HEAD (" in err
    worktrees = subprocess.run(
        [*GIT, "-C", str(repo), "worktree", "list"], capture_output=True, text=True, check=True
    )
    assert worktrees.stdout.count("\n") == 1  # the temporary one is gone


def test_fails_the_cli_with_exit_2_and_one_line_for_a_base_that_is_no_commit_or_a_stack_that_does_not_exist(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert plan.main(["--stack", "dev", "--base", "no-such-branch"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"plan: BASE=no-such-branch: not a commit of the repository at {repo}; name a branch, tag or "
        "commit (e.g. BASE=main)\n"
    )
    assert plan.main(["--stack", "nope"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[0].startswith("Pulumi.nope.yaml: no such stack file; known stacks: dev, prod")


def test_the_pr_summary_puts_the_plan_between_the_renders_above_the_file_diff(tmp_path: Path) -> None:
    def side(name: str, program: Callable[[], None]) -> None:
        folder = tmp_path / name / "dev"
        folder.mkdir(parents=True)
        (folder / "resources.json").write_text(json.dumps(_state(program), indent=2) + "\n")
        (tmp_path / f"{name}.rc").write_text("0\n")

    def old() -> None:
        _key_and_csr("ECDSA", False)()
        command.local.Command("gone", create="true")

    side("base", old)
    side("head", _key_and_csr("RSA", False))
    (tmp_path / "head" / "dev" / "summary.md").write_text("# Render of stack `dev`\n")
    text = prdiff.report("dev", tmp_path)
    start = text.index("## Plan: what `pulumi up` would do, from the base branch's render to this one\n")
    assert text.index("# Render of stack `dev`") < start < text.index("## Rendered files: changes against")
    section = text[start : text.index("## Rendered files")]
    assert (
        "\n0 to create, 0 to update, 1 to replace, 1 to delete. This is the plan between the two renders'"
        in section
    )
    listed = [line for line in section.splitlines() if line.startswith("- ")]
    assert len(listed) == 2
    assert listed[0].startswith(
        "- replace `urn:pulumi:test::cpaas::tls:index/privateKey:PrivateKey::key`: algorithm changed: "
        "algorithm forces replacement (hashicorp/terraform-provider-tls"
    )
    assert (
        listed[1]
        == "- delete `urn:pulumi:test::cpaas::command:local:Command::gone`: no longer in the program"
    )
