"""The stack-file models: both stacks validate, and every rule refuses a bad stack with a clear line.

Each failing case mutates a valid raw stack (from tests.support.raw_stack) minimally and asserts
the exact `cpaas:<path>: <message>` line(s) that ConfigError.lines carries.
"""

from __future__ import annotations

import copy
import string
from collections.abc import Iterator
from ipaddress import IPv4Network
from typing import Any

import pydantic
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from components import config
from tests.support import examples, raw_stack, stack

PROPERTY = examples(50)

UNION_TAGS = {"generated", "imported", "k3d", "kubeconfig", "stackReference", "calico-bgp", "cloud-native"}
UNKNOWN = "unknown key; remove it or check its spelling against docs/config.md"
MISSING = "required key is missing; add it"
DNS_LABEL_MSG = (
    "is not a DNS-1123 label; use 1-63 lowercase letters, digits and '-', "
    "starting and ending with a letter or digit"
)
FQDN_MSG = (
    "is not a fully qualified domain name; use lowercase labels of letters, "
    "digits and '-' joined by '.', e.g. bookinfo.apps.example.com"
)
TRUST_DOMAIN_MSG = (
    "is not a SPIFFE trust domain Istio accepts; use lowercase DNS labels (1-63 letters, digits and "
    "'-', starting and ending with a letter or digit) joined by '.', at most 255 characters, with no "
    "scheme, port or path, e.g. prod.cpaas.example.com"
)
KNOWN_PROD_UNITS = "known units: aws-syd, azure-mel, onprem-syd, onprem-syd-b"
KUBECONFIG_CLUSTER = {"source": "kubeconfig", "kubeconfigSecret": "kc", "kubernetesVersion": "1.34"}


def errors(raw: dict[str, Any]) -> list[str]:
    """The ConfigError lines parse_stack raises for raw (fails the test if it parses)."""
    with pytest.raises(config.ConfigError) as info:
        config.parse_stack(raw)
    assert str(info.value) == "\n".join(info.value.lines)
    return info.value.lines


def path_of(line: str) -> str:
    assert line.startswith("cpaas:"), line
    return line.removeprefix("cpaas:").split(": ", 1)[0]


def new_app(**overrides: Any) -> dict[str, Any]:
    app = {
        "name": "extra",
        "kind": "tcp",
        "vip": "10.10.17.50",
        "port": 9000,
        "namespace": "mqtt",
        "service": "extra",
        "servicePort": 9000,
    }
    app.update(overrides)
    return app


def dev_bigip(**overrides: Any) -> dict[str, Any]:
    bigip = {
        "managementAddress": "192.168.50.10",
        "passwordSecret": "bigipPassword-dev",
        "insecureSkipVerify": True,
        "cisPartition": "cpaas-dev-cis",
        "pulumiPartition": "cpaas-dev",
        "vlan": "internal",
        "selfIps": ["192.168.50.20"],
        "asn": 64513,
        "bgpNeighbors": ["172.28.0.2"],
    }
    bigip.update(overrides)
    return bigip


def referenced_keys(node: Any, suffixes: tuple[str, ...]) -> Iterator[str]:
    """Values of every mapping key (at any depth) whose name ends with one of suffixes."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and key.endswith(suffixes):
                yield value
            else:
                yield from referenced_keys(value, suffixes)
    elif isinstance(node, list):
        for item in node:
            yield from referenced_keys(item, suffixes)


# ---------------------------------------------------------------------------------------------
# 1. The stack files
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_both_stack_files_validate(name: str) -> None:
    parsed = stack(name)
    assert parsed.environment == name
    assert parsed.units


def test_prod_needs_exactly_its_bigip_passwords_and_kubeconfigs_as_secrets() -> None:
    assert stack("prod").secret_keys() == [
        "bigipPassword-aws-syd",
        "bigipPassword-azure-mel",
        "bigipPassword-gslb",
        "bigipPassword-onprem-syd",
        "cis-kubeconfig-onprem-syd-b",
        "kubeconfig-aws-syd",
        "kubeconfig-onprem-syd",
        "kubeconfig-onprem-syd-b",
    ]


def test_prod_names_its_bigip_certificates_as_committed_files_not_config_keys() -> None:
    assert stack("prod").plain_keys() == []
    assert stack("prod").trust_files() == {
        "trust/prod/bigip-aws-syd.pem": "units[0].bigip.trustedCertFile",
        "trust/prod/bigip-azure-mel.pem": "units[1].bigip.trustedCertFile",
        "trust/prod/bigip-onprem-syd.pem": "bigipDevices[0].trustedCertFile",
        "trust/prod/bigip-gslb.pem": "gslb.dnsDevice.trustedCertFile",
        # The bank's root CA, which istiod trusts for teller's issuer (docs/access.md).
        "trust/prod/jwks-example-bank-root.pem": "units[2].mesh.jwks.trustedCaFile",
    }


@pytest.mark.parametrize(
    "value", ["/etc/bigip.pem", "../shared/bigip.pem", "trust/../x.pem", "trust/bigip.txt", "trust//b.pem"]
)
def test_fails_on_a_trusted_cert_file_outside_the_project_or_not_a_certificate_file(value: str) -> None:
    raw = raw_stack("prod")
    raw["units"][0]["bigip"]["trustedCertFile"] = value
    assert errors(raw) == [
        f"cpaas:units[0].bigip.trustedCertFile: {value!r} is not a certificate file in the project; "
        "give the path of a committed PEM file relative to the project folder (letters, digits, "
        "'.', '_', '-' and '/', ending in .pem or .crt), e.g. trust/prod/bigip-aws-syd.pem"
    ]


def test_dev_needs_no_secret_and_no_plain_keys() -> None:
    assert stack("dev").secret_keys() == []
    assert stack("dev").plain_keys() == []


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_secret_and_plain_keys_are_exactly_the_keys_the_stack_file_names(name: str) -> None:
    raw = raw_stack(name)
    parsed = config.parse_stack(raw)
    assert parsed.secret_keys() == sorted(set(referenced_keys(raw, ("Secret",))))
    assert parsed.plain_keys() == sorted(set(referenced_keys(raw, ("CertKey", "certKey"))))
    assert not set(parsed.secret_keys()) & set(parsed.plain_keys())


def test_config_keys_are_the_structured_keys_of_the_stack_files() -> None:
    assert config.config_keys() == ["environment", "pki", "bigipDevices", "units", "gslb", "addressPlan"]
    assert set(raw_stack("prod")) == set(config.config_keys())
    assert set(raw_stack("dev")) <= set(config.config_keys())


# ---------------------------------------------------------------------------------------------
# 2. Cross-field rules, one failing case each
# ---------------------------------------------------------------------------------------------


def test_fails_when_two_units_share_a_name() -> None:
    raw = raw_stack("prod")
    raw["units"][1]["name"] = "aws-syd"
    assert errors(raw) == [
        "cpaas:units[1].name: aws-syd duplicates units[0]; unit names must be unique "
        "(they key every resource), rename one",
        # The wide IPs still name the renamed unit, and say so.
        "cpaas:gslb.wideIps[0].units[2]: azure-mel is not a unit of this stack; "
        "known units: aws-syd, onprem-syd, onprem-syd-b",
        "cpaas:gslb.wideIps[2].ratios.azure-mel: azure-mel is not a unit of this stack; "
        "known units: aws-syd, onprem-syd, onprem-syd-b",
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [("podCidr", "10.10.64.0/18"), ("serviceCidr", "172.20.0.0/16"), ("nodeCidr", "10.10.0.0/20")],
)
def test_fails_when_a_cidr_overlaps_the_same_cidr_of_another_unit(field: str, value: str) -> None:
    raw = raw_stack("prod")
    raw["units"][1]["network"][field] = value
    assert errors(raw) == [
        f"cpaas:units[1].network.{field}: {value} overlaps units[0].network.{field} "
        f"(aws-syd: {value}); use a disjoint range"
    ]


def _rule_problems(raw: dict[str, Any]) -> list[tuple[tuple[str | int, ...], config.Problem]]:
    """(location of the model, problem) of every cross-field problem validating raw raises."""
    with pytest.raises(pydantic.ValidationError) as info:
        config.StackConfig.model_validate(raw)
    errs = info.value.errors(include_url=False)
    return [(tuple(e["loc"]), p) for e in errs if e["type"] == "cpaas_rule" for p in e["ctx"]["problems"]]


def test_a_rule_hands_back_its_problem_as_path_value_allowed_and_fix() -> None:
    raw = raw_stack("prod")
    raw["units"][1]["network"]["podCidr"] = "10.10.64.0/18"
    assert _rule_problems(raw) == [
        (
            (),
            config.Problem(
                "units[1].network.podCidr",
                "10.10.64.0/18",
                "overlaps units[0].network.podCidr (aws-syd: 10.10.64.0/18)",
                "use a disjoint range",
            ),
        )
    ]
    raw = raw_stack("prod")
    raw["units"][0]["egress"]["allow"].append(dict(raw["units"][0]["egress"]["allow"][0]))
    # A model's rule names its path below the model; the error's location is the model's.
    assert _rule_problems(raw) == [
        (
            ("units", 0, "egress"),
            config.Problem("allow[1].namespace", "bookinfo", "is listed twice", "merge the entries"),
        )
    ]
    assert errors(raw) == [
        "cpaas:units[0].egress.allow[1].namespace: bookinfo is listed twice; merge the entries"
    ]


def test_fails_when_a_pod_cidr_overlaps_another_units_node_cidr() -> None:
    raw = raw_stack("prod")
    raw["units"][2]["network"]["podCidr"] = "10.20.0.0/22"
    assert errors(raw) == [
        "cpaas:units[2].network.podCidr: 10.20.0.0/22 overlaps units[1].network.nodeCidr "
        "(azure-mel: 10.20.0.0/20); use a disjoint range"
    ]


def test_fails_once_when_the_pod_cidr_overlaps_the_service_cidr_of_the_same_unit() -> None:
    raw = raw_stack("prod")
    del raw["addressPlan"]  # this test is about the overlap alone
    raw["units"][1]["network"]["podCidr"] = "172.21.0.0/24"
    assert errors(raw) == [
        "cpaas:units[1].network.serviceCidr: 172.21.0.0/16 overlaps podCidr 172.21.0.0/24 "
        "of the same unit; use a disjoint range"
    ]


def test_fails_once_when_the_node_cidr_sits_inside_the_pod_cidr_of_the_same_unit() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["network"]["nodeCidr"] = "10.10.65.0/24"
    assert errors(raw) == [
        "cpaas:units[0].network.nodeCidr: 10.10.65.0/24 overlaps podCidr 10.10.64.0/18 "
        "of the same unit; use a disjoint range"
    ]


def test_fails_when_a_bigip_partition_is_used_by_another_unit() -> None:
    raw = raw_stack("prod")
    raw["units"][1]["bigip"]["cisPartition"] = "cpaas-aws-syd"
    assert errors(raw) == [
        "cpaas:units[1].bigip.cisPartition: cpaas-aws-syd is already used by "
        "units[0].bigip.pulumiPartition; BIG-IP partitions must be unique across the stack, "
        "e.g. prefix them with the unit name"
    ]


def test_fails_when_a_bigip_partition_differs_from_another_units_only_in_case() -> None:
    raw = raw_stack("prod")
    raw["units"][2]["bigip"]["pulumiPartition"] = "CPAAS-aws-syd"
    assert errors(raw) == [
        "cpaas:units[2].bigip.pulumiPartition: CPAAS-aws-syd is already used by "
        "units[0].bigip.pulumiPartition; BIG-IP partitions must be unique across the stack, "
        "e.g. prefix them with the unit name"
    ]


def test_fails_when_a_unit_partition_is_the_gslb_partition() -> None:
    raw = raw_stack("prod")
    raw["units"][1]["bigip"]["pulumiPartition"] = "cpaas-gslb"
    assert errors(raw) == [
        "cpaas:units[1].bigip.pulumiPartition: cpaas-gslb is already used by "
        "gslb.dnsDevice.partition; BIG-IP partitions must be unique across the stack, "
        "e.g. prefix them with the unit name"
    ]


def test_fails_when_cis_and_pulumi_share_a_partition() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["bigip"]["cisPartition"] = "cpaas-aws-syd"
    assert errors(raw) == [
        "cpaas:units[0].bigip.pulumiPartition: cpaas-aws-syd is also cisPartition; "
        "CIS owns its partition alone, so give Pulumi's objects another one"
    ]


def test_fails_when_two_units_on_the_same_bigip_reuse_a_vip_and_port() -> None:
    raw = raw_stack("prod")
    raw["units"][1]["bigip"]["managementAddress"] = "10.10.16.10"
    raw["units"][1]["apps"][0]["vip"] = "10.10.17.10"
    assert errors(raw) == [
        "cpaas:units[1].apps[0].vip: 10.10.17.10 is already a virtual address of partition "
        "cpaas-aws-syd-cis (units[0].apps[0].vip) on BIG-IP 10.10.16.10; a virtual address "
        "belongs to one partition, give this virtual server another address"
    ]


def test_fails_when_two_apps_of_one_unit_reuse_a_vip_and_port() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["apps"].append(new_app(vip="10.10.17.12", port=1883))
    last = len(raw["units"][0]["apps"]) - 1
    assert errors(raw) == [
        f"cpaas:units[0].apps[{last}].vip: 10.10.17.12:1883/tcp is already used by units[0].apps[2].vip "
        "on BIG-IP 10.10.16.10; give each virtual server its own address or port"
    ]


def test_fails_when_the_egress_vip_reuses_an_app_vip_and_port() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["egress"]["vip"] = "10.10.17.10"
    assert errors(raw) == [
        "cpaas:units[0].egress.vip: 10.10.17.10 is already a virtual address of partition "
        "cpaas-aws-syd-cis (units[0].apps[0].vip) on BIG-IP 10.10.16.10; a virtual address "
        "belongs to one partition, give this virtual server another address"
    ]


def test_the_same_vip_and_port_is_allowed_on_different_bigips() -> None:
    raw = raw_stack("prod")
    raw["units"][1]["apps"][0]["vip"] = "10.10.17.10"
    config.parse_stack(raw)


def test_the_same_vip_and_port_is_allowed_for_tcp_and_udp() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["apps"].append(new_app(kind="udp", vip="10.10.17.12", port=1883))
    config.parse_stack(raw)


# What one BIG-IP can hold: a virtual address and a node address each belong to one partition,
# and there is one BGP instance per route domain (cpaas uses route domain 0 only).


def test_fails_when_the_egress_vip_is_a_cis_virtual_address_even_on_another_port() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["egress"]["vip"] = "10.10.17.12"  # mqtt's address, port 1883; egress is 443
    assert errors(raw) == [
        "cpaas:units[0].egress.vip: 10.10.17.12 is already a virtual address of partition "
        "cpaas-aws-syd-cis (units[0].apps[2].vip) on BIG-IP 10.10.16.10; a virtual address "
        "belongs to one partition, give this virtual server another address"
    ]


def test_fails_when_a_gslb_listener_is_a_virtual_address_of_a_unit_on_the_same_device() -> None:
    raw = raw_stack("prod")
    raw["gslb"]["dnsDevice"]["managementAddress"] = "10.30.16.10"
    raw["gslb"]["dnsDevice"]["listeners"] = ["10.30.17.11"]
    assert errors(raw) == [
        "cpaas:gslb.dnsDevice.listeners[0]: 10.30.17.11 is already a virtual address of partition "
        "cpaas-onprem-syd-cis (units[2].apps[1].vip) on BIG-IP 10.30.16.10; a virtual address "
        "belongs to one partition, give this virtual server another address"
    ]


def calico_unit_on(raw: dict[str, Any], i: int, device: str) -> None:
    """Turn prod's units[i] into a calico-bgp unit on the BIG-IP at `device`."""
    unit = raw["units"][i]
    unit["network"]["cni"] = {"type": "calico-bgp", "asn": 64512}
    unit["bigip"]["bgpNeighbors"] = [str(IPv4Network(unit["network"]["nodeCidr"])[11])]
    unit["bigip"]["managementAddress"] = device


def test_fails_when_two_calico_bgp_units_share_a_bigip_declared_inline() -> None:
    raw = raw_stack("prod")
    calico_unit_on(raw, 0, "10.10.16.10")
    calico_unit_on(raw, 1, "10.10.16.10")
    assert errors(raw) == [
        "cpaas:units[1].bigip.managementAddress: 10.10.16.10 is also the BIG-IP of units[0] "
        "(aws-syd), and both units peer BGP with Calico; a BIG-IP runs one BGP instance per "
        "route domain, so declare it once under cpaas:bigipDevices and name it in both units' "
        "bigip.device"
    ]


def test_a_cloud_native_unit_may_share_the_bigip_of_a_calico_bgp_unit() -> None:
    raw = raw_stack("prod")
    bigip = raw["units"][0]["bigip"]
    for key in ("managementAddress", "passwordSecret", "trustedCertFile", "asn", "vlan", "selfIps"):
        del bigip[key]
    bigip["device"] = "syd-dc1-bigip"
    config.parse_stack(raw)


def test_fails_when_two_units_on_one_bigip_use_the_same_forward_proxy_node() -> None:
    raw = raw_stack("prod")
    raw["units"][1]["bigip"]["managementAddress"] = "10.10.16.10"
    raw["units"][1]["egress"]["forwardProxy"]["address"] = "10.10.18.10"
    assert errors(raw) == [
        "cpaas:units[1].egress.forwardProxy.address: 10.10.18.10 is already a node of partition "
        "cpaas-aws-syd (units[0].egress.forwardProxy.address) on BIG-IP 10.10.16.10; a node "
        "address belongs to one partition, use another forward proxy address or another BIG-IP"
    ]


def test_fails_when_the_forward_proxy_is_inside_a_pod_cidr_on_the_same_bigip() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["egress"]["forwardProxy"]["address"] = "10.10.64.9"
    raw["units"][1]["bigip"]["managementAddress"] = "10.10.16.10"
    raw["units"][1]["egress"]["forwardProxy"]["address"] = "10.10.64.10"
    assert errors(raw) == [
        "cpaas:units[0].egress.forwardProxy.address: 10.10.64.9 is inside units[0].network.podCidr "
        "10.10.64.0/18, whose pod IPs CIS makes nodes of in partition cpaas-aws-syd-cis on BIG-IP "
        "10.10.16.10; a node address belongs to one partition, so the forward proxy needs an "
        "address outside the pod CIDRs",
        "cpaas:units[1].egress.forwardProxy.address: 10.10.64.10 is inside units[0].network.podCidr "
        "10.10.64.0/18, whose pod IPs CIS makes nodes of in partition cpaas-aws-syd-cis on BIG-IP "
        "10.10.16.10; a node address belongs to one partition, so the forward proxy needs an "
        "address outside the pod CIDRs",
    ]


@pytest.mark.parametrize(("where", "field"), [("bigip", "asn"), ("cni", "asn")])
@pytest.mark.parametrize(
    ("value", "bound"), [(0, "an ASN is 1-4294967295"), (4294967296, "an ASN is 1-4294967295")]
)
def test_fails_when_an_asn_is_out_of_range(where: str, field: str, value: int, bound: str) -> None:
    raw = raw_stack("prod")
    unit = raw["units"][2]
    target = raw["units"][0]["bigip"] if where == "bigip" else unit["network"]["cni"]
    target[field] = value
    path = "units[0].bigip.asn" if where == "bigip" else "units[2].network.cni.asn"
    [line] = errors(raw)
    assert path_of(line) == path
    assert str(value) in line
    assert bound in line


@pytest.mark.parametrize(("value", "bound"), [(0, "ports are 1-65535"), (65536, "ports are 1-65535")])
@pytest.mark.parametrize(
    ("keys", "path"),
    [
        (("apps", 0, "port"), "units[0].apps[0].port"),
        (("apps", 1, "servicePort"), "units[0].apps[1].servicePort"),
        (("egress", "forwardProxy", "port"), "units[0].egress.forwardProxy.port"),
        (("bigip", "managementPort"), "units[0].bigip.managementPort"),
    ],
)
def test_fails_when_a_port_is_out_of_range(keys: tuple[Any, ...], path: str, value: int, bound: str) -> None:
    raw = raw_stack("prod")
    node = raw["units"][0]
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    [line] = errors(raw)
    assert path_of(line) == path
    assert str(value) in line
    assert bound in line


BAD_FQDNS = [
    "bookinfo",
    "Bookinfo.apps.example-bank.com",
    "bookinfo..example.com",
    "bookinfo.example.com.",
    "-bad.example.com",
    "bookinfo.example.123",
    "book_info.example.com",
]


@pytest.mark.parametrize("value", BAD_FQDNS)
def test_fails_on_a_malformed_fqdn(value: str) -> None:
    raw = raw_stack("prod")
    raw["units"][0]["apps"][0]["fqdn"] = value
    assert errors(raw) == [f"cpaas:units[0].apps[0].fqdn: {value!r} {FQDN_MSG}"]


@pytest.mark.parametrize("value", ["Mqtt", "mqtt_", "-mqtt", "mqtt-", "mq.tt", "m" * 64, ""])
def test_fails_on_a_namespace_that_is_not_a_dns_label(value: str) -> None:
    raw = raw_stack("prod")
    raw["units"][0]["apps"][2]["namespace"] = value
    assert errors(raw) == [f"cpaas:units[0].apps[2].namespace: {value!r} {DNS_LABEL_MSG}"]


@pytest.mark.parametrize("value", ["spiffe://x", "UPPER.case", "a..b", ".a.b", "a.b.", "a.b:8443", "a/b", ""])
def test_fails_on_a_malformed_trust_domain(value: str) -> None:
    raw = raw_stack("prod")
    raw["units"][1]["mesh"]["trustDomain"] = value
    assert errors(raw) == [f"cpaas:units[1].mesh.trustDomain: {value!r} {TRUST_DOMAIN_MSG}"]


@pytest.mark.parametrize("value", ["10.0.0.0/33", "10.0.0.0/-1", "10.300.0.0/16", "fd00::/64"])
def test_fails_on_a_malformed_cidr(value: str) -> None:
    raw = raw_stack("prod")
    raw["units"][1]["network"]["podCidr"] = value
    assert errors(raw) == [
        f"cpaas:units[1].network.podCidr: {value!r} is not an IPv4 CIDR; use e.g. 10.42.0.0/16 (prefix 0-32)"
    ]


def test_fails_on_a_cidr_with_host_bits_and_names_the_network_to_use() -> None:
    raw = raw_stack("prod")
    raw["units"][1]["network"]["podCidr"] = "10.0.0.1/16"
    assert errors(raw) == ["cpaas:units[1].network.podCidr: 10.0.0.1/16 has host bits set; use 10.0.0.0/16"]


@pytest.mark.parametrize("value", ["10.0.0.256", "10.0.0", "bigip.example.com", "::1"])
def test_fails_on_a_malformed_ip_address(value: str) -> None:
    raw = raw_stack("prod")
    raw["units"][1]["bigip"]["managementAddress"] = value
    assert errors(raw) == [
        f"cpaas:units[1].bigip.managementAddress: {value!r} is not an IPv4 address; "
        "write four numbers 0-255 joined by '.', e.g. 10.0.0.1"
    ]


def test_fails_on_unknown_keys_at_every_depth() -> None:
    raw = raw_stack("prod")
    raw["qux"] = 1
    raw["pki"]["root"]["validity"] = 1
    raw["units"][1]["cluster"]["kubeConfig"] = "x"
    raw["units"][1]["network"]["cni"]["asn"] = 64512
    raw["units"][0]["apps"][0]["host"] = "x"
    raw["units"][0]["egress"]["forwardProxy"]["proto"] = "http"
    raw["gslb"]["wideIps"][0]["monitor"]["path"] = "/"
    assert sorted(errors(raw)) == sorted(
        f"cpaas:{path}: {UNKNOWN}"
        for path in [
            "qux",
            "pki.root.validity",
            "units[1].cluster.kubeConfig",
            "units[1].network.cni.asn",
            "units[0].apps[0].host",
            "units[0].egress.forwardProxy.proto",
            "gslb.wideIps[0].monitor.path",
        ]
    )


def test_fails_on_missing_required_keys_at_every_depth() -> None:
    raw = raw_stack("prod")
    del raw["units"][1]["cluster"]["kubernetesVersion"]
    del raw["units"][0]["apps"][0]["vip"]
    del raw["units"][1]["mesh"]["trustDomain"]
    del raw["gslb"]["dnsDevice"]["passwordSecret"]
    assert sorted(errors(raw)) == sorted(
        f"cpaas:{path}: {MISSING}"
        for path in [
            "units[1].cluster.kubernetesVersion",
            "units[0].apps[0].vip",
            "units[1].mesh.trustDomain",
            "gslb.dnsDevice.passwordSecret",
        ]
    )


def test_fails_when_a_stack_with_units_has_no_pki() -> None:
    raw = raw_stack("prod")
    del raw["pki"]
    assert errors(raw) == ["cpaas:pki: required key is missing; a stack with units needs the org PKI"]


def test_fails_when_a_unit_lies_outside_the_address_plan() -> None:
    raw = raw_stack("prod")
    raw["units"][1]["network"]["serviceCidr"] = "192.168.0.0/16"
    assert errors(raw) == [
        "cpaas:units[1].network.serviceCidr: 192.168.0.0/16 is outside addressPlan.serviceBlocks "
        "172.16.0.0/12; move it inside or widen the plan"
    ]


def test_fails_when_an_http_mesh_app_runs_outside_the_injected_namespaces() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["apps"][0]["namespace"] = "shop"
    assert errors(raw) == [
        "cpaas:units[0].apps[0].namespace: shop is not in mesh.injectedNamespaces; an http-mesh app "
        "must run in the mesh, add the namespace there or use kind http-nginx"
    ]


def test_fails_when_an_http_nginx_app_runs_in_an_injected_namespace() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["apps"][1]["namespace"] = "bookinfo"
    assert errors(raw) == [
        "cpaas:units[0].apps[1].namespace: bookinfo is a mesh namespace; http-nginx apps serve "
        "non-mesh namespaces, use kind http-mesh"
    ]


def test_fails_when_an_http_nginx_app_is_deployed_with_nginx_disabled() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["nginx"]["enabled"] = False
    assert errors(raw) == [
        "cpaas:units[0].apps[1].kind: http-nginx while nginx.enabled is false; enable NGINX or "
        "change the kind"
    ]


def test_fails_when_two_apps_of_one_unit_share_a_name() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["apps"].append(new_app(name="mqtt", fqdn="mqtt.apps.example-bank.com"))
    last = len(raw["units"][0]["apps"]) - 1
    assert errors(raw) == [
        f"cpaas:units[0].apps[{last}].name: mqtt duplicates apps[2]; app names are unique per unit"
    ]


def test_fails_when_an_http_app_has_no_fqdn() -> None:
    raw = raw_stack("prod")
    del raw["units"][0]["apps"][1]["fqdn"]
    assert errors(raw) == [
        "cpaas:units[0].apps[1].fqdn: kind http-nginx needs an fqdn (the Host the BIG-IP matches)"
    ]


def test_fails_when_an_egress_allow_namespace_is_not_injected() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["egress"]["allow"][0]["namespace"] = "httpbin"
    assert errors(raw) == [
        "cpaas:units[0].egress.allow[0].namespace: httpbin is not in mesh.injectedNamespaces; only "
        "mesh workloads carry a SPIFFE identity, add the namespace there"
    ]


def test_fails_when_an_egress_allow_namespace_is_listed_twice() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["egress"]["allow"].append({"namespace": "bookinfo"})
    assert errors(raw) == [
        "cpaas:units[0].egress.allow[1].namespace: bookinfo is listed twice; merge the entries"
    ]


def test_fails_when_a_per_app_snat_address_is_also_in_the_shared_snat_addresses() -> None:
    """snatAddresses is the virtual server's pool, shared by every namespace without an address
    of its own: a per-app address there could leave with any of them."""
    raw = raw_stack("prod")
    egress = raw["units"][0]["egress"]
    egress["snatAddresses"] = [*egress["snatAddresses"], egress["allow"][0]["snatAddress"]]
    address = egress["allow"][0]["snatAddress"]
    assert errors(raw) == [
        f"cpaas:units[0].egress.allow[0].snatAddress: {address} is also in snatAddresses, the pool "
        "every namespace without its own address shares; remove it from snatAddresses so only "
        "bookinfo leaves with it"
    ]


def test_fails_when_two_namespaces_share_a_per_app_snat_address() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["mesh"]["injectedNamespaces"].append("payments")
    egress = raw["units"][0]["egress"]
    egress["allow"].append({"namespace": "payments", "snatAddress": egress["allow"][0]["snatAddress"]})
    address = egress["allow"][0]["snatAddress"]
    assert errors(raw) == [
        f"cpaas:units[0].egress.allow[1].snatAddress: {address} is already bookinfo's (allow[0]); "
        "give each namespace an address of its own, or drop snatAddress to share snatAddresses"
    ]


def test_a_per_app_snat_address_needs_no_entry_in_the_shared_snat_addresses() -> None:
    unit = stack("prod").unit("onprem-syd")
    assert unit.egress is not None
    own = [a.snat_address for a in unit.egress.allow if a.snat_address is not None]
    assert own and not set(own) & set(unit.egress.snat_addresses)


def test_fails_when_a_unit_has_egress_but_no_bigip() -> None:
    raw = raw_stack("dev")
    raw["units"][0]["cluster"] = dict(KUBECONFIG_CLUSTER)
    raw["units"][0]["cloud"] = "onprem"
    raw["units"][0]["network"]["cni"] = {"type": "cloud-native"}
    raw["units"][0]["egress"] = {
        "vip": "10.99.0.100",
        "forwardProxy": {"address": "10.99.0.10", "port": 3128},
        "snatAddresses": ["10.99.0.201"],
        "allow": [{"namespace": "bookinfo"}],
    }
    assert errors(raw) == [
        "cpaas:units[0].egress: an egress gateway needs a bigip; add units[].bigip or remove egress"
    ]


def test_fails_when_a_bigip_has_neither_a_trusted_cert_nor_insecure_skip_verify() -> None:
    raw = raw_stack("prod")
    del raw["units"][0]["bigip"]["trustedCertFile"]
    assert errors(raw) == [
        "cpaas:units[0].bigip.trustedCertFile: neither trustedCertFile nor insecureSkipVerify is set; "
        "commit the BIG-IP's management certificate (PEM) and name its path here, e.g. "
        "trust/prod/bigip-aws-syd.pem (or, in dev only, insecureSkipVerify: true)"
    ]


def test_fails_when_a_prod_bigip_skips_tls_verification() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["bigip"]["insecureSkipVerify"] = True
    assert errors(raw) == [
        "cpaas:units[0].bigip.insecureSkipVerify: true in a prod stack; TLS verification may only be "
        "skipped in dev, set trustedCertFile instead"
    ]


def test_a_dev_bigip_may_skip_tls_verification() -> None:
    raw = raw_stack("dev")
    raw["units"][0]["bigip"] = dev_bigip()
    parsed = config.parse_stack(raw)
    assert parsed.units[0].bigip is not None
    assert parsed.units[0].bigip.insecure_skip_verify
    assert parsed.plain_keys() == []
    assert parsed.secret_keys() == ["bigipPassword-dev"]


def test_fails_when_the_gslb_device_has_neither_a_trusted_cert_nor_insecure_skip_verify() -> None:
    raw = raw_stack("prod")
    del raw["gslb"]["dnsDevice"]["trustedCertFile"]
    assert errors(raw) == [
        "cpaas:gslb.dnsDevice.trustedCertFile: neither trustedCertFile nor insecureSkipVerify is set; "
        "commit the BIG-IP's management certificate (PEM) and name its path here, e.g. "
        "trust/prod/bigip-aws-syd.pem (or, in dev only, insecureSkipVerify: true)"
    ]


def test_fails_when_the_prod_gslb_device_skips_tls_verification() -> None:
    raw = raw_stack("prod")
    raw["gslb"]["dnsDevice"]["insecureSkipVerify"] = True
    assert errors(raw) == [
        "cpaas:gslb.dnsDevice.insecureSkipVerify: true in a prod stack; TLS verification may only be "
        "skipped in dev, set trustedCertFile instead"
    ]


def test_fails_when_a_non_local_calico_unit_has_no_bigip_to_peer_with() -> None:
    raw = raw_stack("dev")
    raw["units"][0]["cluster"] = dict(KUBECONFIG_CLUSTER)
    raw["units"][0]["cloud"] = "onprem"
    assert errors(raw) == [
        "cpaas:units[0].network.cni: calico-bgp needs a bigip to peer with; add units[].bigip or use "
        "cloud-native"
    ]


def test_a_local_calico_unit_needs_no_bigip() -> None:
    unit = stack("dev").units[0]
    assert unit.is_local
    assert unit.uses_calico
    assert unit.bigip is None


def test_fails_when_the_bigip_asn_equals_the_cluster_asn() -> None:
    raw = raw_stack("prod")
    raw["bigipDevices"][0]["asn"] = 64512
    assert errors(raw) == [
        f"cpaas:bigipDevices[0].asn: 64512 equals the cluster's ASN of units[{i}] ({name}); the Calico "
        "peering is eBGP, so give the BIG-IP its own private ASN (64512-65534)"
        for i, name in ((2, "onprem-syd"), (3, "onprem-syd-b"))
    ]
    raw = raw_stack("prod")
    raw["units"][0]["network"]["cni"] = {"type": "calico-bgp", "asn": 64700}
    raw["units"][0]["bigip"].update(asn=64700, bgpNeighbors=["10.10.0.11"])
    assert errors(raw) == [
        "cpaas:units[0].bigip.asn: 64700 equals the cluster's ASN; the Calico peering is eBGP, so give "
        "the BIG-IP its own private ASN (64512-65534)"
    ]


def test_fails_when_the_calico_block_size_is_wider_than_the_pod_cidr() -> None:
    raw = raw_stack("dev")
    raw["units"][0]["network"]["podCidr"] = "10.42.0.0/27"
    assert errors(raw) == [
        "cpaas:units[0].network.cni.blockSize: blocks of /26 are bigger than the pod CIDR 10.42.0.0/27; "
        "use blockSize 27 or more, or widen podCidr"
    ]


def test_fails_when_a_k3d_unit_is_not_in_the_local_cloud() -> None:
    raw = raw_stack("dev")
    raw["units"][0]["cloud"] = "aws"
    assert errors(raw) == [
        "cpaas:units[0].cloud: aws with a k3d cluster; k3d clusters are local, set cloud: local"
    ]


def test_fails_when_an_app_vip_is_a_bigip_self_ip() -> None:
    raw = raw_stack("prod")
    raw["units"][2]["apps"][1]["vip"] = "10.30.0.246"
    assert errors(raw) == [
        "cpaas:units[2].apps[1].vip: 10.30.0.246 is a BIG-IP self IP; virtual servers need their own address"
    ]


def test_fails_when_the_egress_vip_is_a_bigip_self_ip() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["egress"]["vip"] = "10.10.16.20"
    assert errors(raw) == [
        "cpaas:units[0].egress.vip: 10.10.16.20 is a BIG-IP self IP; virtual servers need their own address"
    ]


def test_fails_when_a_wide_ip_names_an_unknown_unit() -> None:
    raw = raw_stack("prod")
    raw["gslb"]["wideIps"][0]["units"][1] = "gcp-syd"
    assert errors(raw) == [
        f"cpaas:gslb.wideIps[0].units[1]: gcp-syd is not a unit of this stack; {KNOWN_PROD_UNITS}"
    ]


def test_fails_when_a_wide_ip_ratio_names_an_unknown_unit() -> None:
    raw = raw_stack("prod")
    raw["gslb"]["wideIps"][2]["ratios"]["gcp-syd"] = 1
    assert errors(raw) == [
        f"cpaas:gslb.wideIps[2].ratios.gcp-syd: gcp-syd is not a unit of this stack; {KNOWN_PROD_UNITS}"
    ]


def test_fails_when_a_wide_ip_names_an_app_no_unit_serves() -> None:
    raw = raw_stack("prod")
    raw["gslb"]["wideIps"][1]["app"] = "grafana"
    assert errors(raw) == [
        "cpaas:gslb.wideIps[1].app: grafana is not an app of any unit; add it to units[].apps or "
        "remove the wide IP"
    ]


def test_fails_when_a_wide_ip_names_a_unit_that_does_not_serve_the_app() -> None:
    raw = raw_stack("prod")
    del raw["units"][1]["apps"][0]  # azure-mel no longer serves bookinfo
    assert errors(raw) == [
        "cpaas:gslb.wideIps[0].units[2]: azure-mel does not serve bookinfo; add the app to that unit "
        "or drop it here"
    ]


def test_fails_when_an_app_has_different_fqdns_across_units() -> None:
    raw = raw_stack("prod")
    raw["units"][1]["apps"][0]["fqdn"] = "bookinfo.mel.example-bank.com"
    assert errors(raw) == [
        "cpaas:gslb.wideIps[0].app: bookinfo has different FQDNs across units "
        "(bookinfo.apps.example-bank.com, bookinfo.mel.example-bank.com); a wide IP needs one, give "
        "the app the same fqdn in every unit"
    ]


def test_fails_when_a_wide_ip_app_has_no_fqdn_in_a_unit() -> None:
    raw = raw_stack("prod")
    del raw["units"][1]["apps"][2]["fqdn"]
    assert errors(raw) == [
        "cpaas:gslb.wideIps[2].app: mqtt has no fqdn in unit(s) azure-mel; a wide IP answers for the "
        "app's FQDN, set apps[].fqdn there"
    ]


def test_fails_when_ratio_mode_has_no_ratios() -> None:
    raw = raw_stack("prod")
    del raw["gslb"]["wideIps"][2]["ratios"]
    assert errors(raw) == [
        "cpaas:gslb.wideIps[2].ratios: lbMode ratio needs ratios per unit, e.g. {aws-syd: 2, azure-mel: 1}"
    ]


def test_fails_when_the_last_resort_unit_is_unknown() -> None:
    raw = raw_stack("prod")
    raw["gslb"]["wideIps"][0]["lastResortUnit"] = "gcp-syd"
    assert errors(raw) == [
        f"cpaas:gslb.wideIps[0].lastResortUnit: gcp-syd is not a unit of this stack; {KNOWN_PROD_UNITS}"
    ]


def test_fails_when_an_app_has_two_wide_ips() -> None:
    raw = raw_stack("prod")
    raw["gslb"]["wideIps"][1]["app"] = "bookinfo"
    assert errors(raw) == ["cpaas:gslb.wideIps[1].app: bookinfo already has wideIps[0]; one wide IP per app"]


def test_fails_when_leaf_validity_exceeds_intermediate_validity() -> None:
    raw = raw_stack("prod")
    raw["pki"]["leafValidityDays"] = 731
    assert errors(raw) == [
        "cpaas:pki: leafValidityDays 731 exceeds intermediateValidityDays 730; a leaf must not "
        "outlive its issuer"
    ]


def test_fails_when_intermediate_validity_exceeds_root_validity() -> None:
    raw = raw_stack("dev")
    raw["pki"]["intermediateValidityDays"] = 731
    assert errors(raw) == [
        "cpaas:pki: intermediateValidityDays 731 exceeds root.validityDays 730; shorten the intermediate"
    ]


def test_fails_outside_dev_when_a_renewal_window_is_shorter_than_a_week() -> None:
    """Certificates are renewed by an update in the last third of their life (pki.renewal_hours);
    the deploy workflow runs weekly."""
    raw = raw_stack("prod")
    raw["pki"]["leafValidityDays"] = 12
    raw["pki"]["intermediateValidityDays"] = 18
    assert errors(raw) == [
        "cpaas:pki.intermediateValidityDays: 18 days leaves a renewal window of 6 days (the last "
        "third of the life), shorter than the week between scheduled deploys; use 21 or more",
        "cpaas:pki.leafValidityDays: 12 days leaves a renewal window of 4 days (the last third of "
        "the life), shorter than the week between scheduled deploys; use 21 or more",
    ]


def test_a_dev_stack_may_use_short_lived_certificates() -> None:
    raw = raw_stack("dev")
    raw["pki"]["leafValidityDays"] = 1
    raw["pki"]["intermediateValidityDays"] = 7
    config.parse_stack(raw)


def test_fails_when_the_units_list_is_empty() -> None:
    raw = raw_stack("dev")
    raw["units"] = []
    assert errors(raw) == ["cpaas:units: no units; a stack needs at least one unit under cpaas:units"]


def test_fails_when_a_unit_name_is_longer_than_20_characters() -> None:
    raw = raw_stack("prod")
    raw["units"][1]["name"] = "azure-melbourne-south"
    assert errors(raw) == [
        "cpaas:units[1].name: 'azure-melbourne-south' is 21 characters; unit names are at most 20 "
        "(they prefix cluster, partition and resource names)"
    ]


def test_fails_on_the_only_unit_with_its_own_error_and_no_spurious_empty_units_line() -> None:
    raw = raw_stack("dev")
    raw["units"][0]["cluster"]["apiPort"] = 0
    [line] = errors(raw)
    assert path_of(line) == "units[0].cluster.apiPort"


def test_fails_on_the_only_self_ip_with_its_own_error_and_no_spurious_empty_list_line() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["bigip"]["selfIps"] = ["10.10.16.300"]
    assert errors(raw) == [
        "cpaas:units[0].bigip.selfIps[0]: '10.10.16.300' is not an IPv4 address; "
        "write four numbers 0-255 joined by '.', e.g. 10.0.0.1"
    ]


# ---------------------------------------------------------------------------------------------
# 3. Several errors at once
# ---------------------------------------------------------------------------------------------


def test_fails_with_every_independent_cross_field_error_on_its_own_line() -> None:
    raw = raw_stack("prod")
    raw["units"][1]["bigip"]["cisPartition"] = "cpaas-aws-syd"
    raw["bigipDevices"][0]["asn"] = 64512
    raw["units"][0]["apps"][0]["vip"] = "10.10.16.20"
    raw["gslb"]["wideIps"][0]["lastResortUnit"] = "gcp-syd"
    lines = errors(raw)
    assert sorted(path_of(line) for line in lines) == sorted([
        "units[1].bigip.cisPartition",
        "bigipDevices[0].asn",  # the ASN of both units on the device
        "bigipDevices[0].asn",
        "units[0].apps[0].vip",
        "gslb.wideIps[0].lastResortUnit",
    ])  # fmt: skip


def test_fails_with_every_independent_field_error_on_its_own_line() -> None:
    raw = raw_stack("prod")
    raw["environment"] = "staging"
    raw["units"][0]["apps"][0]["port"] = 0
    raw["units"][1]["mesh"]["trustDomain"] = "spiffe://x"
    raw["units"][1]["network"]["podCidr"] = "10.0.0.1/16"
    raw["gslb"]["wideIps"][1]["lbMode"] = "random"
    lines = errors(raw)
    assert sorted(path_of(line) for line in lines) == sorted([
        "environment",
        "units[0].apps[0].port",
        "units[1].mesh.trustDomain",
        "units[1].network.podCidr",
        "gslb.wideIps[1].lbMode",
    ])  # fmt: skip
    assert "cpaas:environment: 'staging' is not allowed; use 'dev', 'test' or 'prod'" in lines


# ---------------------------------------------------------------------------------------------
# 4. Union tags stay out of paths
# ---------------------------------------------------------------------------------------------


def _bad_in_every_union_member() -> list[dict[str, Any]]:
    dev = raw_stack("dev")  # generated root, k3d cluster, calico-bgp
    dev["pki"]["root"]["validityDays"] = 1
    dev["units"][0]["cluster"]["servers"] = 0
    dev["units"][0]["network"]["cni"]["blockSize"] = 99
    prod = raw_stack("prod")  # imported root, kubeconfig, stackReference, cloud-native
    prod["pki"]["root"] = {"source": "imported", "certKey": "rootCert", "privateKeySecret": "cpaas:rootKey"}
    prod["units"][0]["cluster"]["kubeconfigSecret"] = "cpaas:kc"
    prod["units"][1]["cluster"]["stack"] = "a/b/c/d"
    prod["units"][1]["network"]["cni"]["asn"] = 1
    return [dev, prod]


def test_union_tags_never_appear_in_error_paths() -> None:
    expected = {
        "pki.root.validityDays",
        "units[0].cluster.servers",
        "units[0].network.cni.blockSize",
        "pki.root.privateKeySecret",
        "units[0].cluster.kubeconfigSecret",
        "units[1].cluster.stack",
        "units[1].network.cni.asn",
    }
    paths: set[str] = set()
    for raw in _bad_in_every_union_member():
        for line in errors(raw):
            path = path_of(line)
            assert not any(tag in path.replace("[", ".").split(".") for tag in UNION_TAGS), line
            paths.add(path)
    assert paths >= expected


def test_a_key_spelled_like_a_union_tag_keeps_its_place_in_the_path() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["mesh"]["k3d"] = True
    assert errors(raw) == [f"cpaas:units[0].mesh.k3d: {UNKNOWN}"]


# ---------------------------------------------------------------------------------------------
# 5. Frozen models, no extra keys
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", config.every_model(), ids=lambda m: m.__name__)
def test_every_model_is_frozen_and_forbids_extra_keys(model: type[config.Model]) -> None:
    assert model.model_config.get("frozen") is True
    assert model.model_config.get("extra") == "forbid"


def test_assigning_to_a_parsed_stack_raises() -> None:
    parsed = stack("prod")
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        parsed.environment = "dev"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        parsed.units[0].network.pod_cidr = IPv4Network("10.0.0.0/8")  # type: ignore[misc]
    with pytest.raises(TypeError):
        parsed.units[0].apps[0] = parsed.units[0].apps[1]  # type: ignore[index]


def test_the_wide_ip_ratios_of_a_parsed_stack_cannot_be_changed() -> None:
    ratios = stack("prod").gslb.wide_ips[2].ratios  # type: ignore[union-attr]
    with pytest.raises(TypeError):
        ratios["aws-syd"] = 50  # type: ignore[index]


def test_constructing_a_model_with_an_unknown_key_raises() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"extra_forbidden|Extra inputs"):
        config.Tracing(enabled=True, sampleRate=5)  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError, match=r"extra_forbidden|Extra inputs"):
        config.ForwardProxy.model_validate({"address": "10.0.0.1", "port": 3128, "user": "x"})


# ---------------------------------------------------------------------------------------------
# 6. Properties of the naming and CIDR rules
# ---------------------------------------------------------------------------------------------

dns_labels = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
fqdn_labels = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,28}[a-z0-9])?\Z")
fqdns = st.lists(fqdn_labels, min_size=2, max_size=5).filter(lambda ls: not ls[-1].isdigit()).map(".".join)
trust_domains = st.lists(fqdn_labels, min_size=1, max_size=5).map(".".join)
UPPER_OR_ODD = string.ascii_uppercase + "!@#$%^&*()+=/:; ~,?'\"é"


@st.composite
def spoiled(draw: st.DrawFn, valid: st.SearchStrategy[str], bad_chars: str) -> str:
    """A valid name with one character it may not hold inserted somewhere."""
    text = draw(valid)
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.sampled_from(bad_chars)) + text[at:]


PROD = raw_stack("prod")  # parsed once: the properties copy it instead of re-reading the YAML


def _with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(PROD)
    node: Any = raw
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
    node[path[-1]] = value
    return raw


REGION = ("units", 0, "region")
TRACING_SERVICE = ("units", 0, "mesh", "tracing", "service")
TRUST_DOMAIN = ("units", 0, "mesh", "trustDomain")


@PROPERTY
@given(dns_labels)
def test_every_dns_label_is_accepted(label: str) -> None:
    assert config.parse_stack(_with(REGION, label)).units[0].region == label


@PROPERTY
@given(spoiled(dns_labels, UPPER_OR_ODD + "._"))
def test_fails_on_a_dns_label_with_an_uppercase_or_illegal_character(label: str) -> None:
    assert errors(_with(REGION, label)) == [f"cpaas:units[0].region: {label!r} {DNS_LABEL_MSG}"]


@PROPERTY
@given(fqdns)
def test_every_fqdn_is_accepted(fqdn: str) -> None:
    assert config.parse_stack(_with(TRACING_SERVICE, fqdn)).units[0].mesh.tracing.service == fqdn


@PROPERTY
@given(spoiled(fqdns, UPPER_OR_ODD + "_"))
def test_fails_on_an_fqdn_with_an_uppercase_or_illegal_character(fqdn: str) -> None:
    assert errors(_with(TRACING_SERVICE, fqdn)) == [
        f"cpaas:units[0].mesh.tracing.service: {fqdn!r} {FQDN_MSG}"
    ]


@PROPERTY
@given(trust_domains)
def test_every_trust_domain_is_accepted(domain: str) -> None:
    assert config.parse_stack(_with(TRUST_DOMAIN, domain)).units[0].mesh.trust_domain == domain


@PROPERTY
@given(spoiled(trust_domains, UPPER_OR_ODD))
def test_fails_on_a_trust_domain_with_an_uppercase_or_illegal_character(domain: str) -> None:
    assert errors(_with(TRUST_DOMAIN, domain)) == [
        f"cpaas:units[0].mesh.trustDomain: {domain!r} {TRUST_DOMAIN_MSG}"
    ]


CGNAT = IPv4Network("100.64.0.0/10")


@st.composite
def cgnat_networks(draw: st.DrawFn) -> IPv4Network:
    prefix = draw(st.integers(10, 28))
    offset = draw(st.integers(0, CGNAT.num_addresses - 1))
    return IPv4Network((int(CGNAT.network_address) + offset, prefix), strict=False)


@st.composite
def network_pairs(draw: st.DrawFn) -> tuple[IPv4Network, IPv4Network]:
    """Two networks inside 100.64.0.0/10: independent, or one nested in the other."""
    a = draw(cgnat_networks())
    how = draw(st.sampled_from(["independent", "subnet", "supernet"]))
    if how == "independent":
        b = draw(cgnat_networks())
    elif how == "subnet":
        new_prefix = draw(st.integers(a.prefixlen, min(a.prefixlen + 8, 30)))
        index = draw(st.integers(0, 2 ** (new_prefix - a.prefixlen) - 1))
        size = 2 ** (32 - new_prefix)
        b = IPv4Network((int(a.network_address) + index * size, new_prefix))
    else:
        b = a.supernet(new_prefix=draw(st.integers(10, a.prefixlen)))
    return (a, b) if draw(st.booleans()) else (b, a)


@PROPERTY
@given(network_pairs())
@example((IPv4Network("100.64.0.0/16"), IPv4Network("100.65.0.0/16")))
@example((IPv4Network("100.64.0.0/10"), IPv4Network("100.127.255.0/24")))
def test_two_pod_cidrs_validate_exactly_when_they_do_not_overlap(
    pair: tuple[IPv4Network, IPv4Network],
) -> None:
    a, b = pair
    assert a.subnet_of(CGNAT)
    assert b.subnet_of(CGNAT)
    raw = copy.deepcopy(PROD)  # no other range of prod lies in 100.64.0.0/10
    del raw["addressPlan"]  # 100.64.0.0/10 is outside the plan on purpose
    raw["units"][0]["network"]["podCidr"] = str(a)
    raw["units"][1]["network"]["podCidr"] = str(b)
    if a.overlaps(b):
        assert errors(raw) == [
            f"cpaas:units[1].network.podCidr: {b} overlaps units[0].network.podCidr (aws-syd: {a}); "
            "use a disjoint range"
        ]
    else:
        parsed = config.parse_stack(raw)
        assert parsed.units[0].network.pod_cidr == a
        assert parsed.units[1].network.pod_cidr == b


def test_fails_on_a_missing_union_tag_and_lists_the_kinds_to_choose_from() -> None:
    raw = raw_stack("prod")
    del raw["units"][1]["network"]["cni"]["type"]
    del raw["units"][0]["cluster"]["source"]
    assert errors(raw) == [
        "cpaas:units[0].cluster: required key source is missing; use one of k3d, kubeconfig, stackReference",
        "cpaas:units[1].network.cni: required key type is missing; use one of calico-bgp, cloud-native",
    ]


def test_fails_when_a_calico_unit_with_a_bigip_names_no_bgp_neighbours_or_one_outside_the_nodes() -> None:
    raw = raw_stack("prod")
    raw["units"][2]["bigip"]["bgpNeighbors"] = []
    assert errors(raw) == [
        "cpaas:units[2].bigip.bgpNeighbors: empty for a calico-bgp unit; "
        "list the node IPs the BIG-IP peers with"
    ]
    raw = raw_stack("prod")
    raw["units"][2]["bigip"]["bgpNeighbors"] = ["10.30.0.11", "10.99.0.1"]
    assert errors(raw) == [
        "cpaas:units[2].bigip.bgpNeighbors[1]: 10.99.0.1 is outside nodeCidr 10.30.0.0/20; "
        "BGP neighbours are cluster nodes"
    ]


def test_fails_when_a_waf_names_both_or_neither_a_policy_and_a_template_or_sits_on_an_l4_app() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["apps"][0]["waf"] = {
        "policy": "/Common/w",
        "template": "POLICY_TEMPLATE_RAPID_DEPLOYMENT",
    }
    raw["units"][0]["apps"][2]["waf"] = {"policy": "/Common/w"}
    assert errors(raw) == [
        "cpaas:units[0].apps[0].waf: set exactly one of policy (an existing policy, e.g. "
        "/Common/bookinfo-waf) or template (create one, e.g. POLICY_TEMPLATE_RAPID_DEPLOYMENT)",
        "cpaas:units[0].apps[2].waf: a WAF policy protects HTTP; kind tcp cannot have one",
    ]


def test_fails_on_an_istio_version_older_than_the_v1_apis_it_renders() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["mesh"]["istioVersion"] = "1.21.6"
    assert errors(raw) == [
        "cpaas:units[0].mesh.istioVersion: 1.21.6 predates Istio 1.22, which first serves the v1 APIs "
        "cpaas renders (e.g. an Aspen Mesh 1.21 build); use 1.22 or later"
    ]


def test_fails_an_l4_app_in_a_mesh_namespace_and_an_nginx_app_outside_the_watched_namespaces() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["apps"][2]["namespace"] = "bookinfo"
    raw["units"][0]["apps"][1]["namespace"] = "shop"
    assert errors(raw) == [
        "cpaas:units[0].apps[1].namespace: shop is not in nginx.namespaces, the namespaces NGINX "
        "watches; add it there",
        "cpaas:units[0].apps[2].namespace: bookinfo is a mesh namespace with STRICT mTLS; the BIG-IP "
        "sends tcp straight to the pods without it, so put L4 apps in a non-mesh namespace",
    ]


@pytest.mark.parametrize(
    "organization", ["Example, Bank", "Bank+Co", 'The "Bank"', "A\\B", "Bank<1>", "Bank;", "#Bank", "Bank=1",
                     "Bank/AU", " Bank", "Bank ", "Bank {x}", "Bank [x]", "Bank $x", "Bank\nLtd"],
)  # fmt: skip
def test_fails_on_an_organization_a_certificate_name_would_quote_or_escape(organization: str) -> None:
    raw = raw_stack("prod")
    raw["pki"]["organization"] = organization
    assert errors(raw) == [
        f"cpaas:pki.organization: {organization!r} cannot go into a certificate name as plain text; use "
        "letters, digits, spaces and . & ' ( ) _ : @ ! ? * % - (no , + \" \\ < > ; # = / [ ] { } $), "
        "starting with a letter or digit, e.g. Example Bank Ltd"
    ]


@pytest.mark.parametrize(
    "organization", ["Example Bank", "Example Bank Ltd.", "Smith & Sons (AU) Pty Ltd", "B2"]
)
def test_an_organization_of_plain_text_is_accepted(organization: str) -> None:
    raw = raw_stack("prod")
    raw["pki"]["organization"] = organization
    assert config.parse_stack(raw).pki.organization == organization
