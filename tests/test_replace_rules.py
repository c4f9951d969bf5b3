"""The replacement rules an offline plan applies (issue 11, item 2): one rule per type cpaas
registers, each from its provider's source, each tested with a pair of inputs that replaces and
one that only updates."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from tools import engine, plan, replace_rules
from tools.replace_rules import RULES, changed_paths, deletes_first, replace_reasons, rule_for

SECRET, UNKNOWN = engine.SECRET, engine.UNKNOWN


def _registered(*runs: engine.Run) -> set[str]:
    return {r.type for run in runs for r in run.registrations}


def test_every_type_the_dev_and_prod_stacks_register_has_a_rule(dev: engine.Run, prod: engine.Run) -> None:
    missing = sorted(t for t in _registered(dev, prod) if t not in RULES)
    assert missing == [], f"no replacement rule for {missing}: add one to tools/replace_rules.py"


def test_fails_to_find_a_rule_for_a_type_nobody_wrote_one_for() -> None:
    assert "aws:s3/bucket:Bucket" not in RULES
    with pytest.raises(KeyError, match=r"aws:s3/bucket:Bucket: no replacement rule; add one"):
        rule_for("aws:s3/bucket:Bucket")


def test_every_cpaas_component_type_has_the_engine_rule_for_components(prod: engine.Run) -> None:
    for type_ in {r.type for r in prod.registrations if r.type.startswith("cpaas:")}:
        rule = RULES[type_]
        assert rule.type == type_ and rule.replace_paths == () and "step_generator.go" in rule.source


def test_every_rule_cites_its_source_as_owner_repo_ref_path() -> None:
    for type_, rule in replace_rules.RULES.items():
        assert rule.type == type_
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[\w.-]+:[\w./-]+\.go( \+ .+)?", rule.source), rule.source
        assert rule.delete_first in ("never", "always", "fixed-name"), type_


def test_the_provider_rules_cover_every_provider_cpaas_uses() -> None:
    for package in ("kubernetes", "f5bigip", "tls", "command"):
        assert f"pulumi:providers:{package}" in RULES


# ---------------------------------------------------------------------------------------------
# One pair that replaces and one that only updates, per rule
# ---------------------------------------------------------------------------------------------

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "apps"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {}}},
}


def _k8s(api: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": "x", "namespace": "apps"}, **extra}


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    *parents, last = path.split(".")
    here = out
    for key in parents:
        here = here.setdefault(key, {})
    here[last] = value
    return out


K8S_BASE: dict[str, dict[str, Any]] = {
    "kubernetes:apps/v1:Deployment": DEPLOYMENT,
    "kubernetes:core/v1:ConfigMap": _k8s("v1", "ConfigMap", data={"a": "1"}),
    "kubernetes:core/v1:Namespace": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}},
    "kubernetes:core/v1:PersistentVolumeClaim": _k8s(
        "v1",
        "PersistentVolumeClaim",
        spec={"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    ),
    "kubernetes:core/v1:Secret": _k8s("v1", "Secret", type="Opaque", stringData={"password": SECRET}),
    "kubernetes:core/v1:Service": _k8s("v1", "Service", spec={"clusterIP": "None", "type": "ClusterIP"}),
    "kubernetes:core/v1:ServiceAccount": _k8s("v1", "ServiceAccount"),
    "kubernetes:networking.k8s.io/v1:Ingress": _k8s("networking.k8s.io/v1", "Ingress", spec={"rules": []}),
}
# (path, new value) that replaces, and one that only updates.
K8S_CASES: dict[str, tuple[tuple[str, Any], tuple[str, Any]]] = {
    "kubernetes:apps/v1:Deployment": (("spec.selector.matchLabels.app", "api"), ("spec.replicas", 3)),
    "kubernetes:core/v1:ConfigMap": (("data.a", "2"), ("metadata.labels.team", "x")),
    "kubernetes:core/v1:Namespace": (
        ("metadata.name", "apps2"),
        ("metadata.labels.istio-injection", "enabled"),
    ),
    "kubernetes:core/v1:PersistentVolumeClaim": (
        ("spec.storageClassName", "fast"),
        ("spec.resources.requests.storage", "2Gi"),
    ),
    "kubernetes:core/v1:Secret": (("type", "kubernetes.io/tls"), ("metadata.labels.team", "x")),
    "kubernetes:core/v1:Service": (("spec.clusterIP", "10.0.0.9"), ("spec.type", "LoadBalancer")),
    "kubernetes:core/v1:ServiceAccount": (("metadata.namespace", "other"), ("metadata.labels.team", "x")),
    "kubernetes:networking.k8s.io/v1:Ingress": (("metadata.name", "y"), ("spec.rules", [{"host": "a"}])),
}
CRS = {
    "kubernetes:cis.f5.com/v1:TLSProfile": "TLSProfile",
    "kubernetes:cis.f5.com/v1:TransportServer": "TransportServer",
    "kubernetes:cis.f5.com/v1:VirtualServer": "VirtualServer",
    "kubernetes:networking.istio.io/v1:DestinationRule": "DestinationRule",
    "kubernetes:networking.istio.io/v1:Gateway": "Gateway",
    "kubernetes:networking.istio.io/v1:ServiceEntry": "ServiceEntry",
    "kubernetes:networking.istio.io/v1:VirtualService": "VirtualService",
    "kubernetes:projectcalico.org/v3:BGPConfigurationPatch": "BGPConfiguration",
    "kubernetes:projectcalico.org/v3:BGPPeer": "BGPPeer",
    "kubernetes:security.istio.io/v1:AuthorizationPolicy": "AuthorizationPolicy",
    "kubernetes:security.istio.io/v1:PeerAuthentication": "PeerAuthentication",
    "kubernetes:security.istio.io/v1:RequestAuthentication": "RequestAuthentication",
    "kubernetes:telemetry.istio.io/v1:Telemetry": "Telemetry",
}
for _type, _kind in CRS.items():
    _api = _type.split(":")[1]
    K8S_BASE[_type] = _k8s(_api, _kind, spec={"selector": {"app": "a"}})
    K8S_CASES[_type] = (("metadata.name", "renamed"), ("spec.selector.app", "b"))

OTHER_BASE: dict[str, dict[str, Any]] = {
    "kubernetes:helm.sh/v3:Release": {"name": "istiod", "namespace": "istio-system", "version": "1.30.3"},
    "f5bigip:index/as3:As3": {"as3Json": "{}"},
    "f5bigip:index/command:Command": {"commands": ["save sys config"], "when": "apply"},
    "f5bigip:index/partition:Partition": {"name": "cpaas", "description": "a"},
    "f5bigip:index/sslKeyCert:SslKeyCert": {
        "certName": "c",
        "keyName": "k",
        "certContent": SECRET,
        "keyContent": SECRET,
        "partition": "Common",
    },
    "f5bigip:index/wafPolicy:WafPolicy": {
        "name": "w",
        "partition": "cpaas",
        "templateName": "POLICY_TEMPLATE_RAPID_DEPLOYMENT",
        "description": "a",
    },
    "f5bigip:ltm/dataGroup:DataGroup": {"name": "/cpaas/dg", "type": "string", "records": [{"name": "a"}]},
    "f5bigip:ltm/iRule:IRule": {"name": "/cpaas/r", "irule": "when CLIENT_ACCEPTED {}"},
    "f5bigip:ltm/node:Node": {"name": "/cpaas/n", "address": "10.0.0.1", "description": "a"},
    "f5bigip:ltm/pool:Pool": {"name": "/cpaas/p", "loadBalancingMode": "round-robin"},
    "f5bigip:ltm/poolAttachment:PoolAttachment": {"pool": "/cpaas/p", "node": "/cpaas/n:80"},
    "f5bigip:ltm/profileClientSsl:ProfileClientSsl": {"name": "/cpaas/c", "authenticate": "once"},
    "f5bigip:ltm/profileServerSsl:ProfileServerSsl": {"name": "/cpaas/s", "authenticate": "once"},
    "f5bigip:ltm/snatPool:SnatPool": {"name": "/cpaas/sp", "members": ["10.0.0.5"]},
    "f5bigip:ltm/virtualServer:VirtualServer": {"name": "/cpaas/vs", "destination": "10.0.0.9", "port": 443},
    "f5bigip:ssl/certificate:Certificate": {"name": "c.crt", "partition": "cpaas", "content": "PEM1"},
    "tls:index/privateKey:PrivateKey": {"algorithm": "ECDSA", "ecdsaCurve": "P256"},
    "tls:index/certRequest:CertRequest": {"privateKeyPem": SECRET, "subject": {"commonName": "a"}},
    "tls:index/selfSignedCert:SelfSignedCert": {
        "privateKeyPem": SECRET,
        "isCaCertificate": True,
        "validityPeriodHours": 87600,
        "earlyRenewalHours": 100,
        "subject": {"commonName": "root"},
    },
    "tls:index/locallySignedCert:LocallySignedCert": {
        "caCertPem": "PEM-A",
        "caPrivateKeyPem": SECRET,
        "certRequestPem": "CSR-A",
        "validityPeriodHours": 100,
        "earlyRenewalHours": 10,
    },
    "command:local:Command": {"create": "echo a", "environment": {"A": "1"}, "triggers": ["t1"]},
    "pulumi:providers:kubernetes": {"clusterIdentifier": "cpaas-unit-a", "kubeconfig": SECRET},
    "pulumi:providers:f5bigip": {"address": "https://10.0.0.1", "username": "admin", "password": SECRET},
    "pulumi:providers:tls": {"proxy": {"url": "http://a"}},
    "pulumi:providers:command": {},
    "pulumi:pulumi:StackReference": {"name": "org/clusters/prod"},
    "kubernetes:yaml/v2:ConfigFile": {"file": "a.yaml"},
}
# (path, value) that replaces (None: no input replaces this type), and one that only updates
# (None: every input of the type replaces it).
OTHER_CASES: dict[str, tuple[tuple[str, Any] | None, tuple[str, Any] | None]] = {
    "kubernetes:helm.sh/v3:Release": (("namespace", "istio"), ("version", "1.30.4")),
    "f5bigip:index/as3:As3": (None, ("as3Json", '{"class": "AS3"}')),
    "f5bigip:index/command:Command": (None, ("commands", ["save sys config partitions all"])),
    "f5bigip:index/partition:Partition": (("name", "cpaas2"), ("description", "b")),
    "f5bigip:index/sslKeyCert:SslKeyCert": (("certName", "c2"), ("keyName", "k2")),
    "f5bigip:index/wafPolicy:WafPolicy": (
        ("templateName", "POLICY_TEMPLATE_FUNDAMENTAL"),
        ("description", "b"),
    ),
    "f5bigip:ltm/dataGroup:DataGroup": (("type", "ip"), ("records", [{"name": "b"}])),
    "f5bigip:ltm/iRule:IRule": (("name", "/cpaas/r2"), ("irule", "when HTTP_REQUEST {}")),
    "f5bigip:ltm/node:Node": (("address", "10.0.0.2"), ("description", "b")),
    "f5bigip:ltm/pool:Pool": (("name", "/cpaas/p2"), ("loadBalancingMode", "least-connections-member")),
    "f5bigip:ltm/poolAttachment:PoolAttachment": (("node", "/cpaas/n:81"), ("ratio", 2)),
    "f5bigip:ltm/profileClientSsl:ProfileClientSsl": (("name", "/cpaas/c2"), ("authenticate", "always")),
    "f5bigip:ltm/profileServerSsl:ProfileServerSsl": (("name", "/cpaas/s2"), ("authenticate", "always")),
    "f5bigip:ltm/snatPool:SnatPool": (("name", "/cpaas/sp2"), ("members", ["10.0.0.6"])),
    "f5bigip:ltm/virtualServer:VirtualServer": (("name", "/cpaas/vs2"), ("destination", "10.0.0.10")),
    "f5bigip:ssl/certificate:Certificate": (("name", "d.crt"), ("content", "PEM2")),
    "tls:index/privateKey:PrivateKey": (("ecdsaCurve", "P384"), None),
    "tls:index/certRequest:CertRequest": (("subject.commonName", "b"), None),
    "tls:index/selfSignedCert:SelfSignedCert": (("validityPeriodHours", 1000), ("earlyRenewalHours", 200)),
    "tls:index/locallySignedCert:LocallySignedCert": (("caCertPem", "PEM-B"), ("earlyRenewalHours", 20)),
    "command:local:Command": (("triggers", ["t2"]), ("environment.A", "2")),
    "pulumi:providers:kubernetes": (("clusterIdentifier", "cpaas-unit-b"), ("enableServerSideApply", "true")),
    "pulumi:providers:f5bigip": (None, ("address", "https://10.0.0.2")),
    "pulumi:providers:tls": (None, ("proxy.url", "http://b")),
    "pulumi:providers:command": (None, ("anything", "x")),
    "pulumi:pulumi:StackReference": (None, ("name", "org/clusters/prod2")),
    "kubernetes:yaml/v2:ConfigFile": (None, ("file", "b.yaml")),
}
CASES = {
    **{t: (K8S_BASE[t], *K8S_CASES[t]) for t in K8S_BASE},
    **{t: (OTHER_BASE[t], *OTHER_CASES[t]) for t in OTHER_BASE},
}


def test_every_rule_has_a_replacing_and_an_updating_case_here() -> None:
    cpaas = {t for t in RULES if t.startswith("cpaas:")}
    assert set(RULES) - cpaas == set(CASES)


@pytest.mark.parametrize("type_", sorted(CASES))
def test_a_change_of_a_replace_path_replaces_and_any_other_change_only_updates(type_: str) -> None:
    base, replacing, updating = CASES[type_]
    assert replace_reasons(type_, base, base) == []
    if replacing is not None:
        path, value = replacing
        reasons = replace_reasons(type_, base, _set(base, path, value))
        assert reasons, f"{type_}: {path} should replace"
        assert all(path.split(".")[0] in r and RULES[type_].source in r for r in reasons), reasons
    else:
        assert RULES[type_].replace_paths == ()
    if updating is not None:
        path, value = updating
        new = _set(base, path, value)
        assert changed_paths(base, new), f"{type_}: the updating case changes nothing"
        assert replace_reasons(type_, base, new) == [], f"{type_}: {path} should only update"


def test_a_cpaas_component_never_replaces_on_its_inputs() -> None:
    assert replace_reasons("cpaas:unit:AtomicUnit", {"a": 1}, {"a": 2}) == []


# ---------------------------------------------------------------------------------------------
# Rules with conditions
# ---------------------------------------------------------------------------------------------

K8S_PROVIDER = "pulumi:providers:kubernetes"


def test_a_kubernetes_provider_with_the_same_cluster_identifier_is_never_replaced() -> None:
    old = {"clusterIdentifier": "u", "kubeconfig": "a", "context": "x"}
    assert replace_reasons(K8S_PROVIDER, old, {**old, "kubeconfig": "b", "context": "y"}) == []
    assert replace_reasons(K8S_PROVIDER, old, {**old, "kubeconfig": UNKNOWN}) == []


def test_a_kubernetes_provider_without_a_cluster_identifier_is_replaced_when_its_cluster_changes() -> None:
    old = {"kubeconfig": "a"}
    assert replace_reasons(K8S_PROVIDER, old, {"kubeconfig": "b"})
    assert replace_reasons(K8S_PROVIDER, old, {"kubeconfig": UNKNOWN})
    # Adding the identifier is not a replacement by itself (on-boarding), but the kubeconfig is read.
    assert replace_reasons(K8S_PROVIDER, old, {"kubeconfig": "a", "clusterIdentifier": "u"}) == []
    assert replace_reasons(K8S_PROVIDER, old, {"kubeconfig": "b", "clusterIdentifier": "u"})


def test_a_secret_kubeconfig_change_is_invisible_offline() -> None:
    old = {"kubeconfig": SECRET}
    assert replace_reasons(K8S_PROVIDER, old, {"kubeconfig": SECRET}) == []


def test_a_configmap_marked_immutable_or_not_replaces_on_its_data() -> None:
    base = K8S_BASE["kubernetes:core/v1:ConfigMap"]
    for immutable in (False, True):
        old = {**base, "immutable": immutable}
        assert replace_reasons("kubernetes:core/v1:ConfigMap", old, {**old, "binaryData": {"b": "AA=="}})


SECRET_TYPE, CONFIGMAP_TYPE = "kubernetes:core/v1:Secret", "kubernetes:core/v1:ConfigMap"
# The provider's inputs as the SDK sends them (JSON text), and as a plain bool.
MUTABLE_SECRETS = ({"enableSecretMutable": "true"}, {"enableSecretMutable": True})
MUTABLE_CONFIGMAPS = ({"enableConfigMapMutable": "true"}, {"enableConfigMapMutable": True})


def test_a_provider_with_mutable_secrets_updates_a_secrets_data_and_string_data_in_place() -> None:
    base = {**K8S_BASE[SECRET_TYPE], "data": {"ca.crt": "QQ=="}}
    for path, value in (("stringData.password", "x"), ("data.ca.crt", "Qg=="), ("stringData.new", UNKNOWN)):
        new = _set(base, path, value)
        assert replace_reasons(SECRET_TYPE, base, new), path
        assert replace_reasons(SECRET_TYPE, base, new, provider={}) == replace_reasons(SECRET_TYPE, base, new)
        for provider in MUTABLE_SECRETS:
            assert replace_reasons(SECRET_TYPE, base, new, provider=provider) == [], (path, provider)


def test_a_provider_with_mutable_secrets_still_replaces_a_secret_whose_type_changes() -> None:
    base = K8S_BASE[SECRET_TYPE]
    for provider in MUTABLE_SECRETS:
        [reason] = replace_reasons(
            SECRET_TYPE, base, {**base, "type": "kubernetes.io/tls"}, provider=provider
        )
        assert reason.startswith("type changed: type forces replacement")


def test_a_provider_with_mutable_secrets_still_replaces_an_immutable_secret_on_its_data() -> None:
    old = {**K8S_BASE[SECRET_TYPE], "immutable": True}
    for provider in MUTABLE_SECRETS:
        [reason] = replace_reasons(SECRET_TYPE, old, _set(old, "stringData.password", "x"), provider=provider)
        assert reason.startswith("stringData.password changed: stringData forces replacement")
    # Made immutable in the same update: the provider reads `immutable` from the new inputs.
    mutable = K8S_BASE[SECRET_TYPE]
    made_immutable = {**_set(mutable, "stringData.password", "x"), "immutable": True}
    assert replace_reasons(SECRET_TYPE, mutable, made_immutable, provider=MUTABLE_SECRETS[0])


def test_a_secret_replaces_on_its_data_when_the_flag_is_false_or_unknown_or_only_for_configmaps() -> None:
    base = K8S_BASE[SECRET_TYPE]
    new = _set(base, "stringData.password", "x")
    for provider in (
        {"enableSecretMutable": "false"},
        {"enableSecretMutable": False},
        {"enableSecretMutable": UNKNOWN},
        MUTABLE_CONFIGMAPS[0],
    ):
        assert replace_reasons(SECRET_TYPE, base, new, provider=provider), provider


def test_a_provider_with_mutable_configmaps_updates_their_data_in_place_unless_immutable() -> None:
    base = K8S_BASE[CONFIGMAP_TYPE]
    for path, value in (("data.a", "2"), ("binaryData.b", "AA==")):
        new = _set(base, path, value)
        assert replace_reasons(CONFIGMAP_TYPE, base, new, provider=MUTABLE_SECRETS[0]), path
        for provider in MUTABLE_CONFIGMAPS:
            assert replace_reasons(CONFIGMAP_TYPE, base, new, provider=provider) == [], (path, provider)
            immutable = {**base, "immutable": True}
            assert replace_reasons(CONFIGMAP_TYPE, immutable, {**new, "immutable": True}, provider=provider)
    # The identity still replaces, flag or not.
    renamed = _set(base, "metadata.name", "y")
    assert replace_reasons(CONFIGMAP_TYPE, base, renamed, provider=MUTABLE_CONFIGMAPS[0])
    assert replace_reasons(SECRET_TYPE, K8S_BASE[SECRET_TYPE], renamed, provider=MUTABLE_SECRETS[0])


def test_a_patch_resource_replaces_only_on_its_name_or_namespace() -> None:
    type_ = "kubernetes:projectcalico.org/v3:BGPConfigurationPatch"
    base = K8S_BASE[type_]
    assert replace_reasons(type_, base, _set(base, "spec.asNumber", 64512)) == []
    assert replace_reasons(type_, base, _set(base, "metadata.namespace", "x"))


def test_a_deployment_selector_given_whole_counts_as_a_change_below_it() -> None:
    old = {k: v for k, v in DEPLOYMENT.items() if k != "spec"}
    reasons = replace_reasons("kubernetes:apps/v1:Deployment", old, DEPLOYMENT)
    assert len(reasons) == 1 and reasons[0].startswith("spec"), reasons


def test_ignore_changes_drops_a_replacing_change() -> None:
    type_ = "f5bigip:index/wafPolicy:WafPolicy"
    base = OTHER_BASE[type_]
    new = _set(base, "templateName", "OTHER")
    assert replace_reasons(type_, base, new)
    assert replace_reasons(type_, base, plan._ignored(new, base, ["templateName"])) == []


def test_an_unknown_replace_path_replaces_and_an_unchanged_secret_does_not() -> None:
    type_ = "tls:index/certRequest:CertRequest"
    base = OTHER_BASE[type_]
    assert replace_reasons(type_, base, {**base, "privateKeyPem": SECRET}) == []
    [reason] = replace_reasons(type_, base, {**base, "privateKeyPem": UNKNOWN})
    assert reason.startswith("privateKeyPem ")


def test_a_reason_names_the_changed_path_the_rule_and_its_source() -> None:
    [reason] = replace_reasons(
        "kubernetes:apps/v1:Deployment",
        DEPLOYMENT,
        _set(DEPLOYMENT, "spec.selector.matchLabels.app", "api"),
    )
    rule = RULES["kubernetes:apps/v1:Deployment"]
    assert reason.startswith("spec.selector.matchLabels.app changed")
    assert "spec.selector" in reason and rule.source in reason


def test_an_unconfirmed_rule_says_so_in_its_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    guessed = replace_rules.Rule("x:index/y:Y", ("name",), "never", "a/b@v1:c.go", confirmed=False)
    monkeypatch.setattr(replace_rules, "RULES", replace_rules._Rules([guessed]))
    [reason] = replace_reasons("x:index/y:Y", {"name": "a"}, {"name": "b"})
    assert reason.endswith("[unconfirmed]")
    assert replace_rules.unconfirmed() == [guessed]


# ---------------------------------------------------------------------------------------------
# Delete first
# ---------------------------------------------------------------------------------------------


def test_a_named_kubernetes_object_replaced_under_the_same_name_is_deleted_first() -> None:
    new = _set(DEPLOYMENT, "spec.selector.matchLabels.app", "api")
    assert deletes_first("kubernetes:apps/v1:Deployment", new) is True
    assert deletes_first("kubernetes:apps/v1:Deployment", new, old=DEPLOYMENT) is True


def test_a_renamed_or_moved_or_unnamed_kubernetes_object_is_created_before_the_old_one_goes() -> None:
    type_ = "kubernetes:apps/v1:Deployment"
    assert deletes_first(type_, _set(DEPLOYMENT, "metadata.name", "web2"), old=DEPLOYMENT) is False
    assert deletes_first(type_, _set(DEPLOYMENT, "metadata.namespace", "b"), old=DEPLOYMENT) is False
    unnamed = {**DEPLOYMENT, "metadata": {"namespace": "apps"}}
    assert deletes_first(type_, unnamed) is False


def test_no_provider_but_kubernetes_asks_to_delete_first() -> None:
    for type_, rule in RULES.items():
        if not type_.startswith("kubernetes:") or type_ in (
            "kubernetes:helm.sh/v3:Release",
            "kubernetes:yaml/v2:ConfigFile",
        ):
            assert rule.delete_first == "never", type_
            assert deletes_first(type_, CASES.get(type_, ({}, None, None))[0]) is False
    assert RULES["kubernetes:core/v1:Secret"].delete_first == "fixed-name"


# ---------------------------------------------------------------------------------------------
# changed_paths
# ---------------------------------------------------------------------------------------------


def test_changed_paths_are_dotted_and_indexed_and_sorted() -> None:
    old = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    new = {"a": {"b": 2, "c": [1, 3]}, "d": "x", "e": True}
    assert changed_paths(old, new) == ["a.b", "a.c[1]", "e"]


def test_changed_paths_compare_secrets_as_equal_and_count_unknowns_as_changed() -> None:
    assert changed_paths({"k": SECRET}, {"k": SECRET}) == []
    assert changed_paths({"k": UNKNOWN}, {"k": UNKNOWN}) == ["k"]
    assert changed_paths({"k": "v"}, {"k": UNKNOWN}) == ["k"]


def test_changed_paths_report_a_list_of_another_length_whole_and_a_missing_key_as_its_path() -> None:
    assert changed_paths({"l": [1]}, {"l": [1, 2]}) == ["l"]
    assert changed_paths({"m": {"a": 1}}, {}) == ["m"]
    assert changed_paths({"m": None}, {}) == []


def test_no_registration_of_either_stack_has_a_replace_reason_against_itself(
    dev: engine.Run, prod: engine.Run
) -> None:
    for reg in [*dev.registrations, *prod.registrations]:
        assert replace_reasons(reg.type, reg.inputs, copy.deepcopy(reg.inputs)) == [], reg.name
