"""Offline schema validation (tools.validate) and the pinned schema download (tools.schemas)."""

from __future__ import annotations

import builtins
import copy
import functools
import hashlib
import http.server
import io
import json
import re
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import pytest
import yaml

from components import config, versions
from tools import fastschema, render, schemas, validate
from tools.validate import Validator, Violation, f5_format_checker, resolve_schema_dir

K8S = "1.33"


@pytest.fixture(scope="module")
def validator(schema_dir: Path) -> Validator:
    return Validator(schema_dir)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Validation must never fetch; the download tests talk to 127.0.0.1 only."""
    if "mirror" in request.fixturenames:
        return

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def obj(api_version: str, kind: str, spec: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    meta = {"name": "x", "namespace": "ns"}
    out: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": meta}
    if spec is not None:
        out["spec"] = spec
    return {**out, **extra}


def paths(violations: list[Violation]) -> list[str]:
    return [v.path for v in violations]


# ---------------------------------------------------------------------------------------------
# Calico
# ---------------------------------------------------------------------------------------------

BGP_PEER = obj("projectcalico.org/v3", "BGPPeer", {"peerIP": "192.0.2.1", "asNumber": 64512})
BGP_CONFIG = obj(
    "projectcalico.org/v3",
    "BGPConfiguration",
    {
        "asNumber": 64512,
        "nodeToNodeMeshEnabled": False,
        "logSeverityScreen": "info",
        "serviceClusterIPs": [{"cidr": "10.96.0.0/12"}],
    },
)
IP_POOL = obj(
    "projectcalico.org/v3",
    "IPPool",
    {
        "cidr": "10.244.0.0/16",
        "vxlanMode": "CrossSubnet",
        "ipipMode": "Never",
        "natOutgoing": True,
        "nodeSelector": "all()",
        "blockSize": 26,
    },
)


@pytest.mark.parametrize("good", [BGP_PEER, BGP_CONFIG, IP_POOL], ids=lambda o: o["kind"])
def test_valid_calico_v3_objects_pass(validator: Validator, good: dict[str, Any]) -> None:
    assert validator.k8s_object(good, K8S, "calico.yaml") == []


def test_fails_a_bgppeer_with_a_string_asn(validator: Validator) -> None:
    bad = copy.deepcopy(BGP_PEER)
    bad["spec"]["asNumber"] = "64512x"
    assert validator.k8s_object(bad, K8S, "peer.yaml") == [
        Violation("peer.yaml", "spec.asNumber", "'64512x' is not of type 'integer'")
    ]


def test_fails_a_bgppeer_with_a_misspelled_field(validator: Validator) -> None:
    bad = copy.deepcopy(BGP_PEER)
    bad["spec"]["peerIp"] = bad["spec"].pop("peerIP")
    [violation] = validator.k8s_object(bad, K8S, "peer.yaml")
    assert violation.path == "spec" and "'peerIp' was unexpected" in violation.message


def test_a_felixconfiguration_with_go_style_case_insensitive_patterns_validates(validator: Validator) -> None:
    felix = obj(
        "projectcalico.org/v3",
        "FelixConfiguration",
        {"bpfEnabled": True, "defaultEndpointToHostAction": "aCcEpT", "logSeverityScreen": "Warning"},
    )
    assert validator.k8s_object(felix, K8S, "felix.yaml") == []


def test_fails_a_felixconfiguration_outside_a_case_insensitive_pattern(validator: Validator) -> None:
    felix = obj("projectcalico.org/v3", "FelixConfiguration", {"defaultEndpointToHostAction": "Maybe"})
    [violation] = validator.k8s_object(felix, K8S, "felix.yaml")
    assert violation.path == "spec.defaultEndpointToHostAction"
    assert "(?i)^(Drop|Accept|Return)?$" in violation.message


def test_an_operator_installation_passes_and_int_or_string_ports_accept_both(validator: Validator) -> None:
    installation = obj(
        "operator.tigera.io/v1",
        "Installation",
        {"calicoNetwork": {"ipPools": [{"cidr": "10.244.0.0/16", "encapsulation": "VXLAN"}]}},
    )
    policy = obj(
        "projectcalico.org/v3",
        "GlobalNetworkPolicy",
        {
            "selector": "all()",
            "ingress": [
                {"action": "Allow", "protocol": "TCP", "destination": {"ports": [80, "443", "8000:8080"]}}
            ],
        },
    )
    assert validator.k8s_object(installation, K8S, "i.yaml") == []
    assert validator.k8s_object(policy, K8S, "p.yaml") == []


# ---------------------------------------------------------------------------------------------
# Istio, CIS, NGINX, Gateway API
# ---------------------------------------------------------------------------------------------

PEER_AUTH = obj("security.istio.io/v1", "PeerAuthentication", {"mtls": {"mode": "STRICT"}})


def test_an_istio_peerauthentication_passes(validator: Validator) -> None:
    assert validator.k8s_object(PEER_AUTH, K8S, "pa.yaml") == []


def test_fails_a_peerauthentication_with_a_bad_mode(validator: Validator) -> None:
    bad = obj("security.istio.io/v1", "PeerAuthentication", {"mtls": {"mode": "SOMETIMES"}})
    [violation] = validator.k8s_object(bad, K8S, "pa.yaml")
    assert violation.path == "spec.mtls.mode" and "'STRICT'" in violation.message


CIS_VS = obj(
    "cis.f5.com/v1",
    "VirtualServer",
    {
        "host": "cafe.example.com",
        "virtualServerAddress": "10.8.0.4",
        "pools": [{"path": "/coffee", "service": "coffee", "servicePort": 80}],
    },
)
CIS_TS = obj(
    "cis.f5.com/v1",
    "TransportServer",
    {
        "virtualServerAddress": "10.8.0.5",
        "virtualServerPort": 443,
        "mode": "standard",
        "snat": "auto",
        "pool": {"service": "tls", "servicePort": 443},
    },
)


def test_a_cis_virtualserver_and_transportserver_pass(validator: Validator) -> None:
    assert validator.k8s_object(CIS_VS, K8S, "vs.yaml") == []
    assert validator.k8s_object(CIS_TS, K8S, "ts.yaml") == []


@pytest.mark.parametrize(
    ("good", "update", "expected"),
    [
        (BGP_CONFIG, {"logSeverityScreen": "Chatty"}, ["spec.logSeverityScreen"]),
        (IP_POOL, {"vxlanMode": "Sometimes", "blockSize": "26"}, ["spec.blockSize", "spec.vxlanMode"]),
        (CIS_TS, {"mode": "turbo", "virtualServerPort": "https"}, ["spec.mode", "spec.virtualServerPort"]),
    ],
    ids=[
        "calico-bgpconfiguration-with-an-unknown-log-severity",
        "calico-ippool-with-a-bad-vxlan-mode-and-block-size",
        "cis-transportserver-with-a-bad-mode-and-a-named-port",
    ],
)
def test_fails_a_custom_resource_with_bad_spec_values_at_each_path(
    validator: Validator, good: dict[str, Any], update: dict[str, Any], expected: list[str]
) -> None:
    bad = copy.deepcopy(good)
    bad["spec"].update(update)
    assert paths(validator.k8s_object(bad, K8S, "bad.yaml")) == expected


def test_an_nginx_virtualserver_passes_where_cis_has_a_same_named_kind(validator: Validator) -> None:
    nginx_vs = obj(
        "k8s.nginx.org/v1",
        "VirtualServer",
        {
            "host": "cafe.example.com",
            "tls": {"secret": "cafe-tls"},
            "upstreams": [{"name": "tea", "service": "tea-svc", "port": 80}],
            "routes": [{"path": "/tea", "action": {"pass": "tea"}}],
        },
    )
    assert validator.k8s_object(nginx_vs, K8S, "nvs.yaml") == []
    nginx_vs["spec"]["upstreams"][0]["port"] = "eighty"
    assert paths(validator.k8s_object(nginx_vs, K8S, "nvs.yaml")) == ["spec.upstreams[0].port"]


def test_a_gateway_api_httproute_passes(validator: Validator) -> None:
    route = obj(
        "gateway.networking.k8s.io/v1",
        "HTTPRoute",
        {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "svc", "port": 80}]}]},
    )
    assert validator.k8s_object(route, K8S, "route.yaml") == []


def test_fails_a_crd_version_that_is_not_served(validator: Validator) -> None:
    [violation] = validator.k8s_object(obj("projectcalico.org/v1", "BGPPeer", {}), K8S, "f.yaml")
    assert violation.message.startswith("no CRD for projectcalico.org/v1/BGPPeer")
    assert "serves v3" in violation.message


def test_fails_an_object_of_an_unknown_group(validator: Validator) -> None:
    assert validator.k8s_object(obj("example.com/v1", "Widget", {}), K8S, "w.yaml") == [
        Violation("w.yaml", "(root)", "no CRD for example.com/v1/Widget")
    ]


# ---------------------------------------------------------------------------------------------
# Built-in Kubernetes kinds (kubernetes-validate, strict)
# ---------------------------------------------------------------------------------------------

DEPLOYMENT = obj(
    "apps/v1",
    "Deployment",
    {
        "selector": {"matchLabels": {"app": "a"}},
        "template": {
            "metadata": {"labels": {"app": "a"}},
            "spec": {"containers": [{"name": "a", "image": "a:1"}]},
        },
    },
)


def test_a_deployment_secret_and_namespace_pass(validator: Validator) -> None:
    secret = obj("v1", "Secret", type="Opaque", stringData={"k": "v"})
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns", "labels": {"a": "b"}}}
    for good in (DEPLOYMENT, secret, namespace):
        assert validator.k8s_object(good, K8S, "k.yaml") == []
    assert validator.checked["kubernetes"] >= 3


def test_fails_a_deployment_with_an_unknown_field(validator: Validator) -> None:
    bad = copy.deepcopy(DEPLOYMENT)
    bad["spec"]["template"]["spec"]["containers"][0]["imagePolicy"] = "Always"
    [violation] = validator.k8s_object(bad, K8S, "d.yaml")
    assert violation.path == "spec.template.spec.containers[0]"
    assert "'imagePolicy' was unexpected" in violation.message


def test_fails_a_removed_builtin_api_version(validator: Validator) -> None:
    [violation] = validator.k8s_object(obj("extensions/v1beta1", "Ingress", {}), K8S, "i.yaml")
    assert "Kubernetes 1.33 has no extensions/v1beta1 Ingress" in violation.message


def test_an_unsupported_kubernetes_version_maps_to_the_nearest_and_is_noted_once(schema_dir: Path) -> None:
    v = Validator(schema_dir)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}
    assert v.k8s_object(namespace, "1.12", "n.yaml") == []
    assert v.k8s_object(namespace, "1.12", "n.yaml") == []
    assert v.k8s_object(namespace, "v1.33.4", "n.yaml") == []
    assert len(v.notes) == 1 and "1.12" in v.notes[0] and "1.25" in v.notes[0]


# ---------------------------------------------------------------------------------------------
# CRD schema translation, on a synthetic CRD
# ---------------------------------------------------------------------------------------------

WIDGET_CRD = """\
# leading comment document
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.cis.f5.com
spec:
  group: cis.f5.com
  names:
    kind: Widget
    plural: widgets
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          metadata:
            type: object
            properties:
              name: {type: string, maxLength: 10}
          spec:
            type: object
            properties:
              port: {x-kubernetes-int-or-string: true}
              free: {type: object, x-kubernetes-preserve-unknown-fields: true}
              note: {type: string, nullable: true}
              mode: {type: string, pattern: '^(?i)(fast|slow)$'}
              template:
                type: object
                x-kubernetes-embedded-resource: true
                properties: {spec: {type: object}}
              either:
                type: object
                properties:
                  a: {type: string}
                  b: {type: string}
                anyOf:
                - required: [a]
                - properties: {b: {minLength: 2}}
                  required: [b]
"""


@pytest.fixture
def widget_dir(tmp_path: Path) -> Path:
    (tmp_path / "cis").mkdir()
    (tmp_path / "cis" / "crds.yaml").write_text(WIDGET_CRD)
    return tmp_path


def test_crd_extensions_are_translated_to_json_schema(widget_dir: Path) -> None:
    v = Validator(widget_dir)
    good = obj(
        "cis.f5.com/v1",
        "Widget",
        {
            "port": "https",
            "free": {"anything": {"goes": [1]}},
            "note": None,
            "mode": "FAST",
            "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {}}, "spec": {}},
            "either": {"a": "x", "b": "y"},
        },
    )
    assert v.k8s_object(good, K8S, "w.yaml") == []
    good["spec"]["port"] = 8443
    good["metadata"]["labels"] = {"metadata": "is never closed"}
    assert v.k8s_object(good, K8S, "w.yaml") == []
    assert v.checked == {"cis-crds": 2}


def test_fails_a_synthetic_crd_object_with_each_kind_of_error(widget_dir: Path) -> None:
    bad = obj(
        "cis.f5.com/v1",
        "Widget",
        {"port": 1.5, "mode": "medium", "either": {"b": "y"}, "extra": 1},
        status={},
    )
    bad["metadata"]["name"] = "much-too-long"
    assert paths(Validator(widget_dir).k8s_object(bad, K8S, "w.yaml")) == [
        "(root)",
        "metadata.name",
        "spec",
        "spec.either.b",
        "spec.mode",
        "spec.port",
    ]


# ---------------------------------------------------------------------------------------------
# Missing schemas and the CRD index
# ---------------------------------------------------------------------------------------------


def test_missing_schema_dir_puts_families_in_skipped_but_still_checks_builtins() -> None:
    v = Validator(None)
    for o in (BGP_PEER, PEER_AUTH, CIS_VS, obj("example.com/v1", "Widget", {})):
        assert v.k8s_object(o, K8S, "f.yaml") == []
    assert v.helm_values("gateway", {"replicaCount": 1}, "g.yaml") == []
    assert v.as3({"class": "ADC"}, "a.json") == [] and v.do({"class": "Device"}, "d.json") == []
    assert v.k8s_object(DEPLOYMENT, K8S, "d.yaml") == []
    families = {"calico-crds", "istio-crds", "cis-crds", "other-crds", "helm-values:gateway", "as3", "do"}
    assert v.skipped == families
    assert v.checked == {"kubernetes": 1}


def test_a_family_whose_file_is_missing_is_skipped_but_an_unknown_group_still_fails(widget_dir: Path) -> None:
    v = Validator(widget_dir)
    assert v.k8s_object(BGP_PEER, K8S, "p.yaml") == []
    assert paths(v.k8s_object(obj("example.com/v1", "Widget", {}), K8S, "w.yaml")) == ["(root)"]
    assert paths(v.k8s_object(obj("cis.f5.com/v1", "Gadget", {}), K8S, "g.yaml")) == ["(root)"]
    assert v.skipped == {"calico-crds"}


@pytest.fixture
def yaml_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[int]:
    """Sizes of the YAML texts parsed from here on, in a fresh process with an empty disk cache."""
    loads: list[int] = []
    real_load = yaml.load

    def counting_load(stream: Any, Loader: Any) -> Any:  # noqa: N803 - yaml's own keyword
        loads.append(len(stream))
        return real_load(stream, Loader=Loader)

    monkeypatch.setattr(yaml, "load", counting_load)
    monkeypatch.setenv(fastschema.CACHE_ENV, str(tmp_path / "prepared"))
    fastschema.clear()
    return loads


def test_the_crd_index_is_built_once_per_process_lazily_and_each_document_parsed_at_most_once(
    schema_dir: Path, yaml_loads: list[int]
) -> None:
    loads = yaml_loads
    v = Validator(schema_dir)
    assert v._crd_index is None
    assert v.k8s_object(BGP_PEER, K8S, "p.yaml") == []
    index = v._crd_index
    assert index is not None and len(index) > 80
    installation = obj("operator.tigera.io/v1", "Installation", {})
    ippool_v1 = obj("crd.projectcalico.org/v1", "IPPool", {"cidr": "10.0.0.0/8"})
    for o in (installation, installation, ippool_v1, ippool_v1, BGP_PEER):
        assert v.k8s_object(o, K8S, "o.yaml") == []
    assert v._crd_index is index
    assert len(loads) == 3  # BGPPeer, Installation and IPPool documents; nothing else parsed
    assert sum(loads) < 3_046_956  # never the whole operator-crds.yaml
    again = Validator(schema_dir)  # a second render in the same process
    for o in (installation, ippool_v1, BGP_PEER):
        assert again.k8s_object(o, K8S, "o.yaml") == []
    assert again._crd_index is index and len(loads) == 3


def test_a_new_process_takes_prepared_crd_schemas_from_the_disk_cache_and_parses_no_crd(
    schema_dir: Path, yaml_loads: list[int], tmp_path: Path
) -> None:
    bad_peer = {**BGP_PEER, "spec": {"peerIP": "192.0.2.1", "asNumber": "x"}}
    first = [Validator(schema_dir).k8s_object(o, K8S, "o.yaml") for o in (BGP_PEER, PEER_AUTH, bad_peer)]
    assert len(yaml_loads) == 2 and len(list((tmp_path / "prepared").glob("*.json"))) == 2
    fastschema.clear()  # what a new process starts with
    again = [Validator(schema_dir).k8s_object(o, K8S, "o.yaml") for o in (BGP_PEER, PEER_AUTH)]
    assert again == first[:2] == [[], []] and len(yaml_loads) == 2
    # Explaining a rejection needs the document itself.
    assert Validator(schema_dir).k8s_object(bad_peer, K8S, "o.yaml") == first[2] != []
    assert len(yaml_loads) == 3


def test_the_disk_cache_follows_the_crd_document_and_survives_broken_or_unwritable_entries(
    widget_dir: Path, yaml_loads: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    widget = obj("cis.f5.com/v1", "Widget", {})
    widget["metadata"]["name"] = "eleven-long"
    assert paths(Validator(widget_dir).k8s_object(widget, K8S, "w.yaml")) == ["metadata.name"]
    crds = widget_dir / "cis" / "crds.yaml"
    crds.write_text(crds.read_text().replace("maxLength: 10", "maxLength: 11"))
    fastschema.clear()
    assert Validator(widget_dir).k8s_object(widget, K8S, "w.yaml") == []
    for entry in (tmp_path / "prepared").glob("*.json"):
        entry.write_text('{"text": 1')
    fastschema.clear()
    assert Validator(widget_dir).k8s_object(widget, K8S, "w.yaml") == []
    monkeypatch.setenv(fastschema.CACHE_ENV, str(crds))  # a file: nothing can be written there
    fastschema.clear()
    v = Validator(widget_dir)
    assert v.k8s_object(widget, K8S, "w.yaml") == [] and v.notes == []


# ---------------------------------------------------------------------------------------------
# Helm values
# ---------------------------------------------------------------------------------------------


def test_gateway_chart_values_pass(validator: Validator) -> None:
    values = {"replicaCount": 2, "service": {"type": "LoadBalancer"}, "labels": {"istio": "ingressgateway"}}
    assert validator.helm_values("gateway", values, "gw.yaml") == []


def test_fails_gateway_chart_values_with_a_misspelled_key_and_a_wrong_type(validator: Validator) -> None:
    violations = validator.helm_values("gateway", {"replicaCount": "two", "servce": {}}, "gw.yaml")
    assert paths(violations) == ["(root)", "replicaCount"]
    assert "'servce' was unexpected" in violations[0].message


def test_nginx_values_pass_with_kubernetes_refs_served_offline(validator: Validator) -> None:
    values = {"controller": {"replicaCount": 2, "tolerations": [{"key": "k", "operator": "Exists"}]}}
    assert validator.helm_values("nginx-ingress", values, "nginx.yaml") == []
    assert validator.checked["helm-values"] >= 1


def test_fails_nginx_values_with_a_string_replica_count(validator: Validator) -> None:
    assert validator.helm_values("nginx-ingress", {"controller": {"replicaCount": "two"}}, "nginx.yaml") == [
        Violation("nginx.yaml", "controller.replicaCount", "'two' is not of type 'integer'")
    ]


def test_fails_nginx_values_against_a_remotely_referenced_kubernetes_definition(validator: Validator) -> None:
    values = {"controller": {"tolerations": [{"key": 1}]}}
    violations = validator.helm_values("nginx-ingress", values, "nginx.yaml")
    assert paths(violations) == ["controller.tolerations[0].key"]


def test_fails_any_other_remote_ref_without_touching_the_network(tmp_path: Path) -> None:
    chart = tmp_path / "nginx" / "chart"
    chart.mkdir(parents=True)
    (chart / "values.schema.json").write_text(
        '{"$schema": "https://json-schema.org/draft/2019-09/schema", "type": "object",'
        ' "properties": {"x": {"$ref": "https://example.com/other.json#/definitions/y"}}}'
    )
    [violation] = Validator(tmp_path).helm_values("nginx-ingress", {"x": 1}, "v.yaml")
    assert violation.path == "(root)" and "https://example.com/other.json" in violation.message


def test_values_of_charts_without_a_schema_are_checked_against_upstream_top_level_keys(
    validator: Validator,
) -> None:
    before = validator.checked["helm-values-keys"]
    assert validator.helm_values("tigera-operator", {"installation": {"enabled": True}}, "t.yaml") == []
    istiod = {"profile": "ambient", "meshConfig": {}, "global": {}}
    assert validator.helm_values("istiod", istiod, "i.yaml") == []
    assert validator.helm_values("base", {"defaultRevision": "default"}, "b.yaml") == []
    assert validator.helm_values("f5-bigip-ctlr", {"args": {}, "podSecurityContext": {}}, "c.yaml") == []
    assert validator.checked["helm-values-keys"] == before + 4


def test_fails_unknown_top_level_values_for_charts_without_a_schema(validator: Validator) -> None:
    message = "unknown top-level value for chart tigera-operator (not in upstream values.yaml)"
    values: dict[str, Any] = {"installation": {}, "instalation": {}}
    violations = validator.helm_values("tigera-operator", values, "t.yaml")
    assert violations == [Violation("t.yaml", "instalation", message)]
    assert paths(validator.helm_values("istiod", {"pilot": {}}, "i.yaml")) == ["pilot"]


def test_every_pinned_chart_is_known_and_recorded_keys_are_those_of_the_pinned_version() -> None:
    pinned = {c.key: c.version for c in vars(versions).values() if isinstance(c, versions.Chart)}
    assert set(pinned) <= set(validate.CHARTS), "a chart in components/versions.py the render cannot check"
    recorded = {key: chart.recorded_at for key, chart in validate.CHARTS.items() if chart.top_keys}
    assert recorded == {key: pinned[key] for key in recorded}, (
        "a pinned chart moved: read the top-level keys of its upstream values.yaml at the new tag into "
        "tools/validate/helm.py, then set recorded_at"
    )


def test_values_for_charts_with_nothing_upstream_are_skipped_unknown_charts_fail(schema_dir: Path) -> None:
    v = Validator(schema_dir)
    assert v.helm_values("projectcalico.org.v3", {}, "crd.yaml") == []
    assert v.skipped == set()
    assert v.helm_values("crd.projectcalico.org.v1", {"x": 1}, "crd.yaml") == []
    assert v.skipped == {"helm-values:crd.projectcalico.org.v1"}
    assert paths(v.helm_values("ingress-nginx", {}, "x.yaml")) == ["(root)"]


# ---------------------------------------------------------------------------------------------
# F5 AS3 and DO
# ---------------------------------------------------------------------------------------------

ADC: dict[str, Any] = {
    "class": "ADC",
    "schemaVersion": versions.AS3_SCHEMA_VERSION,
    "id": "cpaas",
    "tenant1": {
        "class": "Tenant",
        "app1": {
            "class": "Application",
            "vs": {"class": "Service_HTTP", "virtualAddresses": ["10.0.1.10%0"], "pool": "pool1"},
            "pool1": {"class": "Pool", "members": [{"servicePort": 80, "serverAddresses": ["192.0.2.1"]}]},
        },
    },
}
DEVICE: dict[str, Any] = {
    "schemaVersion": versions.DO_SCHEMA_VERSION,
    "class": "Device",
    "Common": {
        "class": "Tenant",
        "hostname": "bigip1.example.com",
        "dns": {"class": "DNS", "nameServers": ["192.0.2.53"]},
        "external": {"class": "VLAN", "tag": 4094, "interfaces": [{"name": "1.1", "tagged": True}]},
        "external-self": {
            "class": "SelfIp",
            "address": "10.1.0.20/24",
            "vlan": "external",
            "allowService": "default",
            "trafficGroup": "traffic-group-local-only",
        },
    },
}


def test_a_minimal_as3_declaration_passes_bare_and_wrapped(validator: Validator) -> None:
    assert validator.as3(ADC, "as3.json") == []
    assert validator.as3({"class": "AS3", "action": "deploy", "declaration": ADC}, "as3.json") == []


def test_fails_broken_as3_declarations_at_the_right_place(validator: Validator) -> None:
    bad = copy.deepcopy(ADC)
    app = bad["tenant1"]["app1"]
    app["pool1"]["members"][0]["servicePort"] = "eighty"
    app["vs"]["virtualAddresses"] = ["10.0.1.300"]
    assert paths(validator.as3(bad, "as3.json")) == [
        "tenant1.app1.pool1.members[0].servicePort",
        "tenant1.app1.vs.virtualAddresses[0]",
    ]
    assert paths(validator.as3({**ADC, "schemaVersion": "4.0.0"}, "as3.json")) == ["schemaVersion"]


def test_a_minimal_do_declaration_passes(validator: Validator) -> None:
    assert validator.do(DEVICE, "do.json") == []
    assert validator.do({"class": "DO", "targetHost": "192.0.2.10", "declaration": DEVICE}, "do.json") == []


def test_fails_broken_do_declarations(validator: Validator) -> None:
    bad = copy.deepcopy(DEVICE)
    bad["Common"]["external-self"]["address"] = "10.1.0.999/24"
    bad["Common"]["external"]["tag"] = "4094"
    assert paths(validator.do(bad, "do.json")) == ["Common.external-self.address", "Common.external.tag"]
    # The shared schemas stop at the pinned DO (versions.DO_SCHEMA_VERSION; see MANIFEST.md).
    assert paths(validator.do({**DEVICE, "schemaVersion": "1.47.0"}, "do.json")) == ["schemaVersion"]


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        (
            "f5ip",
            ["", "10.0.0.1", "10.0.0.0%2/24", "FE80::1%3/64", "::"],
            ["10.0.0.1/33", "x", "1.2.3.4%70000", "::/129"],
        ),
        (
            "ipWithOptionalPrefix",
            ["", "10.0.0.0", "10.0.0.0/8", "2001:db8::/32"],
            ["10.0.0.1%1", "10.0.0.0/08"],
        ),
        ("ipWithRequiredPrefix", ["", "10.0.0.0/8", "2001:db8::/32"], ["10.0.0.0", "10.0.0.0%1/8"]),
        (
            "f5bigip",
            ["/Common/pool", "/Common/App/my pool"],
            ["Common/pool", "/", "/Common/a*", "/Common/{x}"],
        ),
        ("f5pointer", ["", "@", "pool1", "/Tenant/App/pool", "1/pool", "@/x#"], ["bad name", "9abc", "a//b"]),
        ("f5label", ["", "my label", "x" * 64], ["a<b", "x" * 65, "tab\there"]),
        ("f5remark", ["free text: ok?", "x" * 64], ['say "hi"', "back\\slash", "x" * 65]),
        ("f5base64", ["", "YWJj", "YWI=", "a-b_"], ["==", "a b", "YW=j"]),
    ],
)
def test_f5_formats_accept_and_reject_as_documented(fmt: str, good: list[str], bad: list[str]) -> None:
    checker = f5_format_checker()
    assert [g for g in good if not checker.conforms(g, fmt)] == []
    assert [b for b in bad if checker.conforms(b, fmt)] == []
    assert checker.conforms(42, fmt)  # formats only constrain strings


# ---------------------------------------------------------------------------------------------
# Compiled validators against the reference (jsonschema and kubernetes-validate alone)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kv_files_in_memory() -> Iterator[None]:
    """kubernetes-validate reads and parses its schema files again for every object; the reference
    runs below get the same parsed files from memory (the schemas it validates with are unchanged)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kv_utils, "schema_contents", functools.cache(kv_utils.schema_contents))
        yield


def _rendered(
    name: str, request: pytest.FixtureRequest | None = None
) -> tuple[config.StackConfig, render.Rendered]:
    if name == "16 units" and request is not None:
        # The session's 16-unit build (tests/conftest.py), grown as `make bench` grows it.
        stack, run = request.getfixturevalue("sixteen_prod")
    else:
        stack, run, _notes = render.evaluate(name)
    return stack, render.render_files(run, stack, [])


Answer = tuple[str, list[Violation]]


def _answers(v: Validator, stack: config.StackConfig, rendered: render.Rendered) -> list[Answer]:
    """What render.validate asks, object by object."""
    versions = {u.name: u.cluster.kubernetes_version for u in stack.units}
    default = max(versions.values())
    out = [(path, v.k8s_object(o, versions.get(unit, default), path)) for path, unit, o in rendered.k8s]
    out += [(path, v.helm_values(chart, values, path)) for path, _unit, chart, values in rendered.helm]
    out += [
        (path, (v.do if kind == "do" else v.as3)(body, path)) for path, kind, body in rendered.declarations
    ]
    return out


@pytest.mark.parametrize("name", ["dev", "prod", "16 units"])
def test_compiled_and_reference_validators_agree_on_every_rendered_object(
    name: str, schema_dir: Path, kv_files_in_memory: None, request: pytest.FixtureRequest
) -> None:
    stack, rendered = _rendered(name, request)
    new, reference = Validator(schema_dir), Validator(schema_dir, reference=True)
    assert _answers(new, stack, rendered) == _answers(reference, stack, rendered)
    assert (new.checked, new.skipped) == (reference.checked, reference.skipped)
    assert sum(new.checked.values()) >= len(rendered.k8s) > 30
    # Every schema had a compiled validator, and it accepted exactly what jsonschema accepted.
    assert new.disagreements == []
    assert [n for n in new.notes if "jsonschema only" in n] == []


def _nodes(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, doc
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield from _nodes(value, (*path, key))


def _spread(paths: list[tuple[Any, ...]], n: int) -> list[tuple[Any, ...]]:
    """n paths spread over the document (first, last and evenly between)."""
    if len(paths) <= n:
        return paths
    return [paths[round(i * (len(paths) - 1) / (n - 1))] for i in range(n)]


def _with(doc: Any, path: tuple[Any, ...], value: Any = None, delete: bool = False) -> Any:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


_WRONG_TYPE: dict[type, Any] = {str: 12345, int: "12345", float: "1.5", bool: "true", type(None): {"x": 1}}


def _broken(doc: Any, per_kind: int = 4) -> Iterator[Any]:
    """Deliberately broken copies of doc: unknown fields, wrong types, missing fields, values that
    no pattern, enum or format takes, negative numbers; a few of each, spread over the document."""
    nodes = list(_nodes(doc))
    objects = [p for p, node in nodes if isinstance(node, dict)]
    leaves = [(p, node) for p, node in nodes if p and not isinstance(node, dict | list)]
    keys = [p for p, _node in nodes if p and isinstance(p[-1], str)]
    strings = [p for p, node in leaves if isinstance(node, str)]
    numbers = [p for p, node in leaves if isinstance(node, int | float) and not isinstance(node, bool)]
    for p in _spread(objects, per_kind):
        yield _with(doc, (*p, "cpaasUnknownField"), 1)
    for p in _spread([p for p, _node in leaves], per_kind):
        yield _with(doc, p, _WRONG_TYPE[type(dict(leaves)[p])])
    for p in _spread(keys, per_kind):
        yield _with(doc, p, delete=True)
    for p in _spread(strings, per_kind):
        yield _with(doc, p, "Not valid!\n")
    for p in _spread(numbers, per_kind):
        yield _with(doc, p, -1)


@pytest.fixture(scope="module")
def prod_render() -> tuple[config.StackConfig, render.Rendered]:
    return _rendered("prod")


def _one_per_schema(rendered: render.Rendered) -> render.Rendered:
    """One rendered object of each kind, chart values and declaration kind."""
    seen: set[Any] = set()
    out = render.Rendered()
    for entry in rendered.k8s:
        if (key := (entry[2].get("apiVersion"), entry[2].get("kind"))) not in seen:
            seen.add(key)
            out.k8s.append(entry)
    for helm in rendered.helm:
        # Only charts with a values.schema.json; the others are checked by top-level key alone.
        if helm[2] not in seen and validate.CHARTS[helm[2]].schema is not None:
            seen.add(helm[2])
            out.helm.append(helm)
    for declaration in rendered.declarations:
        if declaration[1] not in seen:
            seen.add(declaration[1])
            out.declarations.append(declaration)
    return out


@pytest.mark.parametrize("family", ["k8s", "helm", "declarations"])
def test_compiled_and_reference_validators_agree_on_a_corpus_of_broken_objects(
    family: str,
    schema_dir: Path,
    prod_render: tuple[config.StackConfig, render.Rendered],
    kv_files_in_memory: None,
) -> None:
    stack, rendered = prod_render
    samples = _one_per_schema(rendered)
    corpus = render.Rendered()
    if family == "k8s":
        corpus.k8s = [
            (f"{path}#{i}", unit, bad) for path, unit, o in samples.k8s for i, bad in enumerate(_broken(o))
        ]
    elif family == "helm":
        corpus.helm = [
            (f"{path}#{i}", unit, chart, bad)
            for path, unit, chart, values in samples.helm
            for i, bad in enumerate(_broken(values, per_kind=3))
        ]
        enums = [{"kind": "sideways"}, {"logLevel": "chatty"}, {"image": {"pullPolicy": "Sometimes"}}]
        corpus.helm += [
            (f"enum#{i}", "", "nginx-ingress", {"controller": bad}) for i, bad in enumerate(enums)
        ]
    else:
        corpus.declarations = [
            (f"{path}#{i}", kind, bad)
            for path, kind, body in samples.declarations
            for i, bad in enumerate(_broken(body, per_kind=2))
        ]
    new, reference = Validator(schema_dir), Validator(schema_dir, reference=True)
    got, want = _answers(new, stack, corpus), _answers(reference, stack, corpus)
    assert got == want
    assert new.disagreements == []
    messages = " ".join(v.message for _path, found in want for v in found)
    rejected = sum(1 for _path, found in want if found)
    assert rejected >= 8, f"only {rejected} of {len(want)} broken objects were rejected"
    expected = {
        "k8s": [
            "was unexpected",
            "is not of type",
            "is a required property",
            "does not match",
            "is not one of",
        ],
        "helm": ["was unexpected", "is not of type", "is not one of"],
        "declarations": ["was unexpected", "is not of type", "is a required property"],
    }[family]
    assert [m for m in expected if m not in messages] == []


def _check_one_of_each(v: Validator) -> None:
    for o in (DEPLOYMENT, BGP_PEER, PEER_AUTH, CIS_VS):
        assert v.k8s_object(o, K8S, "o.yaml") == []
    assert v.helm_values("gateway", {"replicaCount": 2}, "g.yaml") == []
    assert v.helm_values("nginx-ingress", {"controller": {"replicaCount": 2}}, "n.yaml") == []
    assert v.helm_values("istiod", {"pilot": {}}, "i.yaml") != []
    assert v.as3(ADC, "a.json") == [] and v.do(DEVICE, "d.json") == []


def test_a_second_validator_in_the_process_reads_no_schema_file_again(
    schema_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _check_one_of_each(Validator(schema_dir))
    opened: list[str] = []
    real_open = io.open

    def spy(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(io, "open", spy)
    monkeypatch.setattr(builtins, "open", spy)
    _check_one_of_each(Validator(schema_dir))
    kv_schemas = str(Path(kubernetes_validate.__file__).parent)
    assert [f for f in opened if f.startswith((str(schema_dir), kv_schemas))] == []


# Python `re` (what jsonschema runs) and ECMA-262 (jsonschema-rs's dialect) disagree on these.
# The ones where ECMA accepts more (\S and \s) would let a wrong value through a compiled validator.
DIALECT: dict[str, tuple[str, str]] = {
    "digits": (r"^\d+$", "\u0663"),  # Python's \d takes any Unicode digit
    "nonSpace": (r"^\S+$", "a\x1cb"),  # Python's \s takes \x1c-\x1f, ECMA's does not
    "space": (r"^\s*$", "\ufeff"),  # ECMA's \s takes U+FEFF, Python's does not
    "word": (r"^\w+$", "\u00e9t\u00e9"),  # Python's \w is Unicode
    "anchored": (r"^ab$", "ab\n"),  # Python's $ also matches before a final newline
    "folded": (r"(?i)^k$", "\u212a"),  # Kelvin sign folds to k in Python
    "dot": (r"^a.b$", "a\rb"),  # ECMA's . refuses \r
}


def test_patterns_keep_python_regex_semantics_where_ecma_262_differs(tmp_path: Path) -> None:
    properties = {name: {"type": "string", "pattern": pattern} for name, (pattern, _v) in DIALECT.items()}
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "dialects.cis.f5.com"},
        "spec": {
            "group": "cis.f5.com",
            "names": {"kind": "Dialect", "plural": "dialects"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                        "type": "object", "properties": properties
                    }}}},
                }
            ],
        },
    }  # fmt: skip
    (tmp_path / "cis").mkdir()
    (tmp_path / "cis" / "crds.yaml").write_text(yaml.safe_dump(crd))
    new, reference = Validator(tmp_path), Validator(tmp_path, reference=True)
    answers = []
    for name, (pattern, value) in DIALECT.items():
        o = obj("cis.f5.com/v1", "Dialect", {name: value})
        want = [] if re.search(pattern, value) else [f"spec.{name}"]
        answers.append(
            (name, paths(new.k8s_object(o, K8S, "d.yaml")), paths(reference.k8s_object(o, K8S, "d.yaml")))
        )
        assert answers[-1] == (name, want, want)
    assert [name for name, got, _ref in answers if got] == ["nonSpace", "space"]
    assert new.disagreements == [] and new.notes == []


def test_objects_that_are_not_plain_json_are_judged_by_jsonschema_alone(validator: Validator) -> None:
    """jsonschema-rs would read a tuple as an array and fail on a non-string key."""
    bad = copy.deepcopy(BGP_CONFIG)
    bad["spec"]["serviceClusterIPs"] = ({"cidr": "10.96.0.0/12"},)
    assert paths(validator.k8s_object(bad, K8S, "bgp.yaml")) == ["spec.serviceClusterIPs"]
    odd_key = {"controller": {"replicaCount": 2, "service": {"annotations": {1: "x"}}}}
    fresh = Validator(validator.schema_dir)
    reference = Validator(validator.schema_dir, reference=True)
    assert fresh.helm_values("nginx-ingress", odd_key, "n.yaml") == reference.helm_values(
        "nginx-ingress", odd_key, "n.yaml"
    )
    assert fresh.disagreements == []  # jsonschema-rs was not asked


# patternProperties keep jsonschema-rs's regex (tools/fastschema.py). These match no more keys in
# ECMA-262 than in Python, and each sits beside additionalProperties: false.
REVIEWED_PATTERN_PROPERTIES = {
    r"^.*$",
    r"^[^\x00-\x20:\x7f-\xff]{1,254}$",
    r"^field(3[0-2]|[1-2][0-9]|[1-9])$",
}


def test_every_pattern_properties_regex_in_the_schemas_is_a_reviewed_one(schema_dir: Path) -> None:
    found: dict[str, Any] = {}
    for path in sorted(schema_dir.rglob("*.json")):
        for _path, node in _nodes(json.loads(path.read_text())):
            if isinstance(node, dict) and isinstance(node.get("patternProperties"), dict):
                found.update(dict.fromkeys(node["patternProperties"], node.get("additionalProperties")))
    assert set(found) == REVIEWED_PATTERN_PROPERTIES
    assert set(found.values()) == {False}
    assert [p.name for p in schema_dir.rglob("*.yaml") if "patternProperties" in p.read_text()] == []


def test_where_the_compiled_validator_alone_rejects_jsonschemas_answer_stands_and_is_recorded(
    validator: Validator,
) -> None:
    """patternProperties keep jsonschema-rs's regex: `^.*$` does not match a key ending in a
    newline there, so it falls to additionalProperties: false, where Python's `$` lets it match."""
    fresh = Validator(validator.schema_dir)
    values = {"controller": {"hostPort": {"http\n": 80}}}
    assert fresh.helm_values("nginx-ingress", values, "nginx.yaml") == []
    assert fresh.disagreements == [
        "nginx.yaml: jsonschema-rs rejects, jsonschema accepts (chart nginx-ingress values.schema.json)"
    ]


# ---------------------------------------------------------------------------------------------
# Violation and resolve_schema_dir
# ---------------------------------------------------------------------------------------------


def test_violations_print_as_file_path_message_and_sort_deterministically() -> None:
    a, b = Violation("b.yaml", "spec", "x"), Violation("a.yaml", "spec.z", "y")
    assert str(a) == "b.yaml: spec: x"
    assert sorted([a, b]) == [b, a]


def test_resolve_schema_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    shared = tmp_path / "shared" / "schemas"
    cache = tmp_path / "home" / ".cache" / "cpaas" / "schemas"
    repo.mkdir()
    monkeypatch.setattr(validate.core, "REPO_ROOT", repo)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CPAAS_SCHEMAS", "/from/env")
    assert resolve_schema_dir("/from/cli") == Path("/from/cli")
    assert resolve_schema_dir(None) == Path("/from/env")
    monkeypatch.delenv("CPAAS_SCHEMAS")
    assert resolve_schema_dir(None) is None
    cache.mkdir(parents=True)
    assert resolve_schema_dir(None) is None  # a cache without MANIFEST.md is incomplete
    (cache / "MANIFEST.md").write_text("# cache\n")
    assert resolve_schema_dir(None) == cache
    shared.mkdir(parents=True)
    assert resolve_schema_dir(None) == shared
    assert resolve_schema_dir("") == shared


# ---------------------------------------------------------------------------------------------
# tools.schemas: pinned downloads
# ---------------------------------------------------------------------------------------------

_BUNDLE_HEADER = re.compile(rb"^---\n#\n# (config/crd/standard/\S+)\n#\n", re.MULTILINE)


def _upstream_tree(schema_dir: Path, root: Path) -> None:
    """Lay the shared files out like raw.githubusercontent.com: <repo>/<commit>/<path>."""
    for rel, url, _sha in schemas.PINNED:
        target = root / url.removeprefix(schemas.RAW + "/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(schema_dir / rel)
    for rel, _sha, parts in schemas.GATEWAY_API_BUNDLES:
        pieces = _BUNDLE_HEADER.split((schema_dir / rel).read_bytes())[1:]
        components = dict(zip(pieces[::2], pieces[1::2], strict=True))
        for path, url, _part_sha in parts:
            target = root / url.removeprefix(schemas.RAW + "/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(components[path.encode()])


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def mirror(schema_dir: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "upstream"
    _upstream_tree(schema_dir, root)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_pinned_list_covers_every_manifest_file_with_its_checksum(schema_dir: Path) -> None:
    manifest = (schema_dir / "MANIFEST.md").read_text()
    listed = set(re.findall(r"^\| `([^`]+)` \|", manifest, re.MULTILINE))
    pinned = {rel: sha for rel, _url, sha in schemas.PINNED} | {
        rel: sha for rel, sha, _parts in schemas.GATEWAY_API_BUNDLES
    }
    assert set(pinned) == listed and len(listed) == 59
    for rel, sha in pinned.items():
        assert hashlib.sha256((schema_dir / rel).read_bytes()).hexdigest() == sha, rel
    assert all(re.search(r"/[0-9a-f]{40}/", url) for _rel, url, _sha in schemas.PINNED)


def test_schemas_fill_the_cache_from_a_mirror_and_verify_every_file(
    schema_dir: Path, mirror: tuple[str, Path], tmp_path: Path
) -> None:
    base_url, _root = mirror
    dest = tmp_path / "cache"
    lines: list[str] = []
    written = schemas.fill(dest, base_url=base_url, echo=lines.append)
    assert len(written) == 59 and (dest / "MANIFEST.md").is_file()
    for rel in written:
        assert (dest / rel).read_bytes() == (schema_dir / rel).read_bytes(), rel
    assert not list(dest.rglob("*.part"))
    # A second run verifies what is there and downloads nothing.
    shutil.rmtree(_root)
    assert schemas.fill(dest, base_url=base_url, echo=lines.append) == written
    assert Validator(dest).k8s_object(BGP_PEER, K8S, "p.yaml") == []


def test_fails_a_download_with_a_wrong_checksum_loudly_leaving_no_partial_file(
    mirror: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base_url, root = mirror
    rel, url, _sha = next(p for p in schemas.PINNED if p[0] == "istio/chart/gateway/values.schema.json")
    tampered = root / url.removeprefix(schemas.RAW + "/")
    tampered.unlink()
    tampered.write_text("{}")
    dest = tmp_path / "cache"
    with pytest.raises(schemas.ChecksumError, match=re.escape(rel)):
        schemas.fill(dest, base_url=base_url, echo=lambda _line: None)
    assert not (dest / rel).exists() and not (dest / "MANIFEST.md").exists()
    assert not [p for p in dest.rglob("*") if p.name.endswith(".part")]
    assert schemas.main(["--dest", str(dest), "--base-url", base_url]) == 1
    assert "FAILED" in capsys.readouterr().err
