"""Shared BIG-IPs (cpaas:bigipDevices): the config rules, one provider, BGP instance and save per
device, CIS multi-cluster pools, and GSLB's one server per device (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import config, gslb, multicluster
from components.bigip import routing
from tests import support
from tests.support import raw_stack, run_build
from tests.support import stack as stack_of
from tools import engine, render, replicate
from tools.validate import Validator

ONPREM, ONPREM_B = 2, 3  # prod's units on the shared device syd-dc1-bigip


errors = support.config_errors


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


def test_a_unit_on_a_shared_device_takes_its_access_and_asn_and_keeps_its_own_partitions() -> None:
    stack = config.parse_stack(raw_stack("prod"))
    a, b = stack.units[ONPREM].bigip, stack.units[ONPREM_B].bigip
    assert a is not None and b is not None
    assert (a.device, b.device) == ("syd-dc1-bigip", "syd-dc1-bigip")
    assert a.management_address == b.management_address == stack.bigip_devices[0].management_address
    assert (a.asn, b.asn, a.password_secret) == (64513, 64513, "bigipPassword-onprem-syd")
    assert (a.cis_partition, b.cis_partition) == ("cpaas-onprem-syd-cis", "cpaas-onprem-syd-b-cis")
    assert [str(ip) for ip in b.self_ips] == ["10.31.0.245"]
    assert stack.units_on("syd-dc1-bigip") == (stack.units[ONPREM], stack.units[ONPREM_B])


def test_vlan_and_self_ips_default_to_the_devices_first_vlan_and_all_its_self_ips() -> None:
    raw = raw_stack("prod")
    del raw["units"][ONPREM_B]["bigip"]["vlan"]
    del raw["units"][ONPREM_B]["bigip"]["selfIps"]
    b = config.parse_stack(raw).units[ONPREM_B].bigip
    assert b is not None and b.vlan == "internal"
    assert [str(ip) for ip in b.self_ips] == ["10.30.0.245", "10.30.0.246", "10.31.0.245"]


def test_fails_when_a_unit_names_an_unknown_device() -> None:
    raw = raw_stack("prod")
    raw["units"][ONPREM_B]["bigip"]["device"] = "syd-bigip"
    assert errors(raw) == [
        "cpaas:units[3].bigip.device: syd-bigip is not a device of bigipDevices (known: "
        "syd-dc1-bigip); declare the BIG-IP under cpaas:bigipDevices or name one of those"
    ]


def test_fails_when_a_unit_on_a_shared_device_sets_what_the_device_declares() -> None:
    raw = raw_stack("prod")
    raw["units"][ONPREM_B]["bigip"]["asn"] = 64600
    raw["units"][ONPREM_B]["bigip"]["managementAddress"] = "10.31.16.10"
    assert errors(raw) == [
        "cpaas:units[3].bigip.managementAddress: is declared by bigipDevices[0] (syd-dc1-bigip), "
        "the device this unit names; remove it here; a unit on a shared device takes it from the device",
        "cpaas:units[3].bigip.asn: is declared by bigipDevices[0] (syd-dc1-bigip), the device "
        "this unit names; remove it here; a unit on a shared device takes it from the device",
    ]


def test_fails_when_two_units_on_one_device_use_the_same_partition() -> None:
    raw = raw_stack("prod")
    raw["units"][ONPREM_B]["bigip"]["pulumiPartition"] = "cpaas-onprem-syd"
    assert errors(raw) == [
        "cpaas:units[3].bigip.pulumiPartition: cpaas-onprem-syd is already used by "
        "units[2].bigip.pulumiPartition; BIG-IP partitions must be unique across the stack, e.g. "
        "prefix them with the unit name"
    ]


def test_fails_when_a_virtual_address_is_used_by_two_partitions_on_one_device() -> None:
    raw = raw_stack("prod")
    raw["units"][ONPREM_B]["apps"] = [
        {"name": "mqtt-b", "kind": "tcp", "vip": "10.30.17.12", "port": 8883, "namespace": "mqtt",
         "service": "mosquitto", "servicePort": 8883}
    ]  # fmt: skip
    assert errors(raw) == [
        "cpaas:units[3].apps[0].vip: 10.30.17.12 is already a virtual address of partition "
        "cpaas-onprem-syd-cis (units[2].apps[2].vip) on BIG-IP 10.30.16.10; a virtual address "
        "belongs to one partition, give this virtual server another address"
    ]


def test_fails_when_a_units_vlan_or_self_ip_is_not_on_its_device() -> None:
    raw = raw_stack("prod")
    raw["units"][ONPREM_B]["bigip"]["vlan"] = "external"
    raw["units"][ONPREM_B]["bigip"]["selfIps"] = ["10.31.0.246"]
    assert errors(raw) == [
        "cpaas:units[3].bigip.vlan: external is not a VLAN of device syd-dc1-bigip (internal, "
        "internal-b); add it to the device's vlans or pick one of them",
        "cpaas:units[3].bigip.selfIps[0]: 10.31.0.246 is not a self IP of device syd-dc1-bigip; "
        "list the device's self IPs this cluster peers with, or drop selfIps to use them all",
    ]


def egress_for_b(raw: dict[str, Any], **overrides: Any) -> None:
    egress = {
        "vip": "10.31.17.100",
        "forwardProxy": {"address": "10.31.18.10", "port": 3128},
        "snatAddresses": ["10.31.17.200"],
        "allow": [{"namespace": "bookinfo"}],
    }
    egress.update(overrides)
    raw["units"][ONPREM_B]["egress"] = egress


def test_fails_when_two_units_on_one_device_share_a_snat_address() -> None:
    raw = raw_stack("prod")
    egress_for_b(raw, snatAddresses=["10.30.17.201"])
    assert errors(raw) == [
        "cpaas:units[3].egress.snatAddresses[0]: 10.30.17.201 is already "
        "units[2].egress.allow[0].snatAddress on BIG-IP 10.30.16.10; give each unit's egress SNAT "
        "addresses of their own"
    ]


def test_fails_when_a_snat_address_is_a_virtual_address_on_the_same_device() -> None:
    raw = raw_stack("prod")
    egress_for_b(raw, snatAddresses=["10.30.17.10"])
    assert errors(raw) == [
        "cpaas:units[3].egress.snatAddresses[0]: 10.30.17.10 is already units[2].apps[0].vip on "
        "BIG-IP 10.30.16.10; give each unit's egress SNAT addresses of their own"
    ]


def test_fails_when_two_units_on_one_device_use_the_same_forward_proxy_node() -> None:
    raw = raw_stack("prod")
    egress_for_b(raw, forwardProxy={"address": "10.30.18.10", "port": 3128})
    assert errors(raw) == [
        "cpaas:units[3].egress.forwardProxy.address: 10.30.18.10 is already a node of partition "
        "cpaas-onprem-syd (units[2].egress.forwardProxy.address) on BIG-IP 10.30.16.10; a node "
        "address belongs to one partition, use another forward proxy address or another BIG-IP"
    ]


def test_fails_when_the_devices_asn_is_a_units_cluster_asn() -> None:
    raw = raw_stack("prod")
    raw["units"][ONPREM_B]["network"]["cni"]["asn"] = 64513
    assert errors(raw) == [
        "cpaas:bigipDevices[0].asn: 64513 equals the cluster's ASN of units[3] (onprem-syd-b); the "
        "Calico peering is eBGP, so give the BIG-IP its own private ASN (64512-65534)"
    ]


def test_fails_when_a_device_is_declared_again_inline_or_named_by_no_unit() -> None:
    raw = raw_stack("prod")
    bigip = raw["units"][ONPREM_B]["bigip"]
    del bigip["device"]
    bigip.update(
        managementAddress="10.30.16.10",
        passwordSecret="bigipPassword-onprem-syd",
        trustedCertFile="trust/prod/bigip-onprem-syd.pem",
        asn=64513,
    )
    del raw["units"][ONPREM]["apps"][2]["multiCluster"]
    raw["bigipDevices"].append(
        {**raw["bigipDevices"][0], "name": "spare", "managementAddress": "10.30.16.11"}
    )
    assert errors(raw) == [
        "cpaas:units[3].bigip.managementAddress: 10.30.16.10 is also the BIG-IP of units[2] "
        "(onprem-syd), and both units peer BGP with Calico; a BIG-IP runs one BGP instance per "
        "route domain, so declare it once under cpaas:bigipDevices and name it in both units' "
        "bigip.device",
        "cpaas:bigipDevices[1].name: spare is named by no unit; name it in units[].bigip.device or remove it",
        "cpaas:units[3].bigip.managementAddress: 10.30.16.10 is the BIG-IP bigipDevices[0] "
        "(syd-dc1-bigip); name it in bigip.device instead of declaring it again",
    ]


def test_fails_when_a_multi_cluster_peer_is_not_behind_the_same_device() -> None:
    raw = raw_stack("prod")
    raw["units"][ONPREM]["apps"][2]["multiCluster"]["peers"] = [{"unit": "aws-syd", "weight": 1}]
    assert errors(raw) == [
        "cpaas:units[2].apps[2].multiCluster.peers[0].unit: aws-syd is not behind this unit's "
        "shared device (syd-dc1-bigip); one virtual server reaches the pods of clusters whose "
        "BIG-IP is that device; name the same bigipDevices entry in both units' bigip.device"
    ]


def test_fails_when_a_multi_cluster_peer_is_the_apps_own_unit_or_unknown() -> None:
    raw = raw_stack("prod")
    raw["units"][ONPREM]["apps"][2]["multiCluster"]["peers"] = [
        {"unit": "onprem-syd", "weight": 1},
        {"unit": "onprem-mel", "weight": 1},
    ]
    assert errors(raw) == [
        "cpaas:units[2].apps[2].multiCluster.peers[0].unit: onprem-syd is this app's own unit; "
        "list each other unit that serves the app once",
        "cpaas:units[2].apps[2].multiCluster.peers[1].unit: onprem-mel is not a unit of this stack; "
        "list each other unit that serves the app once",
    ]


def test_fails_when_ratio_weights_are_missing_or_active_active_has_weights() -> None:
    raw = raw_stack("prod")
    raw["units"][ONPREM]["apps"][2]["multiCluster"] = {"mode": "ratio", "peers": [{"unit": "onprem-syd-b"}]}
    assert errors(raw) == [
        "cpaas:units[2].apps[2].multiCluster.weight: is missing for mode ratio; give every cluster "
        "its weight (0-100)"
    ]
    raw["units"][ONPREM]["apps"][2]["multiCluster"] = {
        "mode": "active-active",
        "peers": [{"unit": "onprem-syd-b", "weight": 3}],
    }
    assert errors(raw) == [
        "cpaas:units[2].apps[2].multiCluster.peers[0].weight: 3 is set for mode active-active, "
        "which shares equally; remove it or use mode ratio"
    ]


# ---------------------------------------------------------------------------------------------
# The device side: one provider, one BGP instance, one save
# ---------------------------------------------------------------------------------------------

SHARED = "syd-dc1-bigip"
DEVICE_TYPE = "cpaas:bigip:SharedDevice"


def _under(run: engine.Run, reg: engine.Registration, name: str) -> bool:
    """Whether `reg` sits (at any depth) under the component or unit named `name`."""
    by_urn = run.by_urn()
    cur = by_urn.get(reg.parent)
    while cur is not None:
        if cur.name == name:
            return True
        cur = by_urn.get(cur.parent)
    return False


def _on_device(run: engine.Run) -> list[engine.Registration]:
    return [
        r
        for r in run.registrations
        if r.type.startswith("f5bigip:")
        and any(_under(run, r, n) for n in ("onprem-syd", "onprem-syd-b", SHARED))
    ]


def test_a_shared_device_has_one_provider_for_the_objects_of_all_its_units(prod: engine.Run) -> None:
    provider = prod.get(f"{SHARED}-provider")
    assert _under(prod, provider, SHARED) and provider.type == "pulumi:providers:f5bigip"
    assert provider.inputs["address"] == "https://10.30.16.10" and provider.inputs["teemDisable"] == "true"
    names = sorted(
        r.name for r in prod.by_type("pulumi:providers:f5bigip") if r.name.endswith("-bigip-provider")
    )
    assert names == ["aws-syd-bigip-provider", "azure-mel-bigip-provider", f"{SHARED}-provider"]
    # The steps that take the provider's lock keep a plugin process each (device.Login).
    own = {"onprem-syd-egress-identity", "onprem-syd-waf-bookinfo-rapid-deployment"}
    objects = _on_device(prod)
    assert {r.name for r in objects} >= {
        "onprem-syd-bigip-pulumi-partition",
        "onprem-syd-b-bigip-pulumi-partition",
    }
    for reg in objects:
        if reg.name not in own:
            assert reg.provider.startswith(provider.urn + "::"), reg.name


def test_a_shared_device_runs_one_bgp_instance_with_a_peer_group_per_unit(prod: engine.Run) -> None:
    applies = [r for r in prod.by_type("f5bigip:index/command:Command") if r.name.endswith("-bgp-apply")]
    assert [r.name for r in applies] == [f"{SHARED}-bgp-apply"]
    commands = applies[0].inputs["commands"]
    assert commands == routing.device_tmsh_commands(
        stack_of("prod").device(SHARED), stack_of("prod").units_on(SHARED)
    )
    create = commands[-1]
    assert create.startswith(f"create net routing bgp /Common/cpaas-{SHARED} local-as 64513 graceful-restart")
    assert (
        "peer-group add { cpaas-onprem-syd { remote-as 64512 } cpaas-onprem-syd-b { remote-as 64512 } }"
        in create
    )
    assert "10.30.0.11 { peer-group cpaas-onprem-syd }" in create
    assert "10.31.0.13 { peer-group cpaas-onprem-syd-b } }" in create
    # Before it creates the instance it deletes it and each unit's own instance (one per route domain).
    deleted = [c for c in commands if c.startswith("run util bash")]
    assert [c.split("tmsh list net routing bgp ")[1].split(" ")[0] for c in deleted] == [
        f"/Common/cpaas-{SHARED}",
        "/Common/cpaas-onprem-syd",
        "/Common/cpaas-onprem-syd-b",
    ]
    assert prod.get(f"{SHARED}-bgp-remove").inputs["commands"] == [
        f"delete net routing bgp /Common/cpaas-{SHARED}",
        "save sys config",
    ]
    assert "'" not in " ".join(commands)  # the provider does not escape single quotes on update


def test_fails_when_a_devices_route_domain_is_not_0() -> None:
    # Pools, virtual servers and egress objects stay in route domain 0; a BGP instance elsewhere
    # would route the pods where no pool member is (the upstream review of issue 16).
    raw = raw_stack("prod")
    raw["bigipDevices"][0]["routeDomain"] = 2
    assert errors(raw) == [
        "cpaas:bigipDevices[0].routeDomain: 2 is not supported yet; cpaas puts the pools, virtual servers "
        "and egress objects in route domain 0, so its BGP instance must be there too: set 0 or remove it"
    ]


def test_one_save_per_device_after_every_object_of_its_units_and_the_bgp_check(prod: engine.Run) -> None:
    saves = [
        r
        for r in prod.by_type("cpaas:bigip:ConfigSave")
        if _under(prod, r, SHARED) or r.name.startswith("onprem")
    ]
    assert [r.name for r in saves] == [f"{SHARED}-save"] and _under(prod, saves[0], SHARED)
    save = prod.get(f"{SHARED}-save-command")
    cleanup = "onprem-syd-egress-snat-translations-cleanup"  # destroy-only: nothing to save after it
    lock_free = [
        r for r in _on_device(prod) if r.name not in (save.name, f"{SHARED}-save-on-destroy", cleanup)
    ]
    assert {r.urn for r in lock_free if "-bgp-" not in r.name} <= set(save.dependencies)
    assert prod.get(f"{SHARED}-bgp-check").urn in save.dependencies
    # On destroy the save-on-destroy goes last: every object of every unit on the device waits for it.
    last = prod.get(f"{SHARED}-save-on-destroy")
    assert last.inputs == {"commands": ["save sys config"], "when": "destroy"}
    for reg in lock_free:
        assert last.urn in prod.upstream(reg), reg.name


def _aliases(run: engine.Run) -> dict[str, str]:
    """New URN -> the old URN it keeps (aliases by name and parent), with children inheriting their
    parent's alias as the engine does (the parent's name prefix swapped for the alias's).
    Ref: pulumi/pulumi@v3.259.0:pkg/resource/deploy/step_generator.go (inheritedChildAlias)"""
    by_urn = run.by_urn()
    found: dict[str, str] = {}
    for reg in run.registrations:  # parents register before their children
        parent = by_urn.get(reg.parent)
        named = [
            a["spec"] for a in reg.options["aliases"] if a["spec"].get("name") and a["spec"].get("parentUrn")
        ]
        if named:
            chain = named[0]["parentUrn"].split("::")[2]
            found[reg.urn] = f"urn:pulumi:prod::cpaas::{chain}${reg.type}::{named[0]['name']}"
        elif parent is not None and parent.urn in found:
            old_parent = found[parent.urn]
            name = reg.name
            if name.startswith(parent.name):
                name = old_parent.rsplit("::", 1)[1] + name[len(parent.name) :]
            chain = old_parent.split("::")[2]
            found[reg.urn] = f"urn:pulumi:prod::cpaas::{chain}${reg.type}::{name}"
    return found


def test_moving_onprem_syd_onto_the_shared_device_keeps_every_bigip_urn_through_aliases(
    prod: engine.Run, prod_before_devices: engine.Run
) -> None:
    before = prod_before_devices
    old = {
        r.urn
        for r in before.registrations
        if (
            r.type.startswith(
                ("f5bigip:", "pulumi:providers:f5bigip", "command:local:Command", "cpaas:bigip:")
            )
        )
        and _under(before, r, "onprem-syd")
    }
    now = {r.urn for r in prod.registrations}
    kept = _aliases(prod)
    assert len(set(kept.values())) == len(kept)  # no old URN claimed twice
    missing = sorted(u for u in old if u not in now and u not in kept.values())
    assert missing == []
    moved = sorted(u.rsplit("::", 1)[1] for u in old if u not in now)
    assert moved == sorted([
        "onprem-syd-bgp", "onprem-syd-bgp-apply", "onprem-syd-bgp-check", "onprem-syd-bgp-remove",
        "onprem-syd-bigip-provider", "onprem-syd-bigip-save", "onprem-syd-bigip-save-check",
        "onprem-syd-bigip-save-command", "onprem-syd-bigip-save-on-destroy",
    ])  # fmt: skip


def test_removing_a_unit_from_a_shared_device_keeps_the_device_its_bgp_instance_and_save(
    prod: engine.Run,
) -> None:
    raw = raw_stack("prod")
    del raw["units"][ONPREM_B]
    del raw["units"][ONPREM]["apps"][2]["multiCluster"]
    alone = run_build(config.parse_stack(raw), "prod")
    device_side = {r.urn for r in prod.registrations if _under(prod, r, SHARED)}
    assert device_side and device_side <= {r.urn for r in alone.registrations}
    create = alone.get(f"{SHARED}-bgp-apply").inputs["commands"][-1]
    assert "peer-group add { cpaas-onprem-syd { remote-as 64512 } }" in create and "10.31." not in create
    assert not [
        r for r in alone.registrations if r.name.startswith("onprem-syd-b-") or r.name == "onprem-syd-b"
    ]


def test_gslb_sees_one_data_center_and_one_server_for_the_shared_device(prod: engine.Run) -> None:
    s = stack_of("prod")
    assert s.gslb is not None
    refs = [gslb.UnitRef.of(u, s.device_of(u)) for u in s.units]
    shared = gslb.declaration(s.gslb, refs)["declaration"]["Common"]["Shared"]
    servers = sorted(k for k, v in shared.items() if isinstance(v, dict) and v.get("class") == "GSLB_Server")
    assert servers == [
        "cpaas-bigip-aws-syd",
        "cpaas-bigip-azure-mel",
        f"cpaas-bigip-{SHARED}",
        "cpaas-dns-device",
    ]
    server = shared[f"cpaas-bigip-{SHARED}"]
    assert server["devices"] == [{"address": "10.30.0.245"}]
    assert server["dataCenter"] == {"use": f"/Common/Shared/cpaas-dc-{SHARED}"}
    assert [v["name"] for v in server["virtualServers"]] == [
        "onprem-syd-bookinfo",
        "onprem-syd-httpbin",
        "onprem-syd-mqtt",
        "onprem-syd-teller",
    ]
    assert json.loads(prod.get("gslb-as3").inputs["as3Json"])["declaration"]["Common"]["Shared"] == shared


# ---------------------------------------------------------------------------------------------
# One app, two clusters, one virtual server (CIS multi-cluster)
# ---------------------------------------------------------------------------------------------


def _k8s(run: engine.Run, kind: str, name: str) -> engine.Registration:
    found = [
        r
        for r in run.registrations
        if r.inputs.get("kind") == kind and r.inputs.get("metadata", {}).get("name") == name
    ]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def test_the_app_units_cis_runs_multi_cluster_standalone_reading_the_peer_by_its_kubeconfig(
    prod: engine.Run,
) -> None:
    values = prod.get("onprem-syd-cis-release").inputs["values"]
    assert {
        k: values["args"][k] for k in ("multi_cluster_mode", "local_cluster_name", "extended_spec_configmap")
    } == {
        "multi_cluster_mode": "standalone",
        "local_cluster_name": "onprem-syd",
        "extended_spec_configmap": "f5-cis/cpaas-extended-spec",
    }
    assert "multi_cluster_mode" not in prod.get("onprem-syd-b-cis-release").inputs["values"]["args"]
    assert "multi_cluster_mode" not in prod.get("aws-syd-cis-release").inputs["values"]["args"]
    spec = prod.get("onprem-syd-cis-extended-spec")
    assert spec.inputs["metadata"] == {
        "name": "cpaas-extended-spec",
        "namespace": "f5-cis",
        "labels": {"f5nr": "true"},
    }
    assert yaml.safe_load(spec.inputs["data"]["extendedSpec"]) == {
        "mode": "default",
        "externalClustersConfig": [
            {"clusterName": "onprem-syd-b", "secret": "f5-cis/cpaas-kubeconfig-onprem-syd-b"}
        ],
    }
    secret = prod.get("onprem-syd-cis-kubeconfig-onprem-syd-b")
    assert secret.inputs["metadata"] == {"name": "cpaas-kubeconfig-onprem-syd-b", "namespace": "f5-cis"}
    assert secret.inputs["stringData"] == {
        "kubeconfig": "[secret]"
    }  # the peer's kubeconfig, never in a model or values
    # CIS exits when the extended ConfigMap is missing at start; it reads the Secret then too.
    release = prod.get("onprem-syd-cis-release")
    assert {spec.urn, secret.urn} <= prod.upstream(release)


def test_the_multi_cluster_apps_pool_names_both_clusters_services_with_the_ratio_weights(
    prod: engine.Run,
) -> None:
    ts = prod.get("onprem-syd-ingress-mqtt-transportserver").inputs["spec"]
    assert ts["pool"]["multiClusterServices"] == [
        {
            "clusterName": "onprem-syd",
            "namespace": "mqtt",
            "service": "mosquitto",
            "servicePort": 1883,
            "weight": 2,
        },
        {
            "clusterName": "onprem-syd-b",
            "namespace": "mqtt",
            "service": "mosquitto",
            "servicePort": 1883,
            "weight": 1,
        },
    ]
    # In CIS's default multi-cluster mode a pool takes only multiClusterServices: every pool of that
    # CIS names its own cluster's service there too.
    vs = prod.get("onprem-syd-ingress-bookinfo-virtualserver").inputs["spec"]
    assert vs["pools"][0]["multiClusterServices"] == [
        {
            "clusterName": "onprem-syd",
            "namespace": "istio-ingress",
            "service": "istio-ingressgateway",
            "servicePort": 443,
        }
    ]
    other = prod.get("aws-syd-ingress-mqtt-transportserver").inputs["spec"]
    assert "multiClusterServices" not in other["pool"]


def test_active_active_gives_no_weights_so_cis_shares_equally() -> None:
    s = stack_of("prod")
    unit = s.unit("onprem-syd")
    app = unit.apps[2].model_copy(
        update={
            "multi_cluster": config.MultiCluster(
                mode="active-active", peers=(config.ClusterPeer(unit="onprem-syd-b"),)
            )
        }
    )
    assert [set(e) for e in multicluster.services(unit, app, "mosquitto", "mqtt", 1883)] == [
        {"clusterName", "namespace", "service", "servicePort"}
    ] * 2


def test_the_peer_makes_the_apps_namespace_outside_its_mesh(prod: engine.Run) -> None:
    ns = _k8s_named(prod, "onprem-syd-b-namespaces-mqtt")
    assert ns.inputs["metadata"] == {"name": "mqtt", "labels": {"istio-injection": "disabled"}}


def _k8s_named(run: engine.Run, name: str) -> engine.Registration:
    return run.get(name)


def test_fails_when_a_multi_cluster_app_is_http() -> None:
    raw = raw_stack("prod")
    raw["units"][ONPREM]["apps"][1]["multiCluster"] = {"peers": [{"unit": "onprem-syd-b"}]}
    assert errors(raw) == [
        "cpaas:units[2].apps[1].multiCluster: kind http-nginx with multiCluster; multi-cluster apps "
        "are tcp or udp (their pool is the app's Service in each cluster); HTTP apps would need their "
        "routes in every peer, which cpaas does not build"
    ]


def test_fails_when_a_multi_cluster_apps_namespace_is_in_a_peers_mesh() -> None:
    raw = raw_stack("prod")
    raw["units"][ONPREM_B]["mesh"]["injectedNamespaces"] = ["bookinfo", "mqtt"]
    assert errors(raw) == [
        "cpaas:units[2].apps[2].multiCluster.peers[0].unit: onprem-syd-b injects namespace mqtt "
        "into its mesh (STRICT mTLS); the BIG-IP sends plain L4 to the pods, so keep mqtt out of "
        "that unit's mesh.injectedNamespaces"
    ]


def test_cis_reads_a_peer_through_the_peers_read_only_kubeconfig_never_the_deployers() -> None:
    # Only the read-only key is given: asking for the peer's own (admin) kubeconfig raises KeyError.
    from components import platform

    inputs = platform.DeployInputs(secrets={"cis-kubeconfig-onprem-syd-b": "read-only"})
    assert platform.peer_kubeconfig(stack_of("prod"), "onprem-syd-b", inputs) is not None
    assert "cis-kubeconfig-onprem-syd-b" in stack_of("prod").secret_keys()


def test_fails_when_a_multi_cluster_peer_has_no_read_only_kubeconfig_for_cis() -> None:
    raw = raw_stack("prod")
    del raw["units"][ONPREM_B]["cluster"]["cisKubeconfigSecret"]
    assert errors(raw) == [
        "cpaas:units[2].apps[2].multiCluster.peers[0].unit: onprem-syd-b has no "
        "cluster.cisKubeconfigSecret; name the secret config key holding a kubeconfig of a read-only "
        "ServiceAccount of that cluster for CIS (docs/bigip.md), never the deployer's own"
    ]


# ---------------------------------------------------------------------------------------------
# tools.replicate
# ---------------------------------------------------------------------------------------------


def test_replicating_a_unit_of_a_shared_device_gives_the_new_unit_a_bigip_of_its_own_by_default() -> None:
    raw = raw_stack("prod")
    replica = replicate.derive(raw, "onprem-syd", "onprem-mel")
    bigip = replica["unit"]["bigip"]
    assert "device" not in bigip
    assert (bigip["managementAddress"], bigip["selfIps"], bigip["vlan"]) == (
        "10.1.16.10",
        ["10.1.0.245", "10.1.0.246"],
        "internal",
    )
    assert bigip["passwordSecret"] == "bigipPassword-onprem-mel" and bigip["asn"] == 64514
    assert "multiCluster" not in replica["unit"]["apps"][2]
    assert (
        "app mqtt: multiCluster dropped (its peers are on syd-dc1-bigip, not on the new BIG-IP)"
        in replica["notes"]
    )
    config.parse_stack(replicate.apply(raw, replica))


def test_replicating_onto_the_same_shared_device_keeps_the_device_and_gives_new_partitions() -> None:
    raw = raw_stack("prod")
    replica = replicate.derive(raw, "onprem-syd-b", "onprem-syd-c", device="same")
    bigip = replica["unit"]["bigip"]
    assert bigip["device"] == SHARED and "vlan" not in bigip and "selfIps" not in bigip
    assert (bigip["cisPartition"], bigip["pulumiPartition"]) == (
        "cpaas-onprem-syd-c-cis",
        "cpaas-onprem-syd-c",
    )
    assert (
        replica["allocated"]["BIG-IP"]
        == f"shared device {SHARED}, partitions cpaas-onprem-syd-c-cis, cpaas-onprem-syd-c"
    )
    assert replica["secrets"] == ["kubeconfig-onprem-syd-c", "cis-kubeconfig-onprem-syd-c"]
    s = config.parse_stack(replicate.apply(raw, replica))
    assert [u.name for u in s.units_on(SHARED)] == ["onprem-syd", "onprem-syd-b", "onprem-syd-c"]


def test_fails_to_replicate_onto_the_same_device_a_unit_whose_bigip_is_its_own() -> None:
    with pytest.raises(replicate.ReplicateError, match="--device same: aws-syd's BIG-IP is its own"):
        replicate.derive(raw_stack("prod"), "aws-syd", "aws-mel", device="same")


def test_the_do_form_of_a_shared_devices_bgp_is_one_routing_bgp_with_a_peer_group_per_unit(
    schema_dir: Path,
) -> None:
    s = stack_of("prod")
    files = render.do_declarations(s)
    assert "bigip/onprem-syd/bgp.do.json" not in files and "bigip/onprem-syd-b/bgp.do.json" not in files
    declaration = files[f"bigip/{SHARED}/bgp.do.json"]
    bgp = declaration["Common"][f"cpaas-{SHARED}"]
    assert bgp["localAS"] == 64513
    assert bgp["peerGroups"] == [
        {"name": "cpaas-onprem-syd", "remoteAS": 64512},
        {"name": "cpaas-onprem-syd-b", "remoteAS": 64512},
    ]
    assert {n["address"]: n["peerGroup"] for n in bgp["neighbors"]}["10.31.0.11"] == "cpaas-onprem-syd-b"
    validator = Validator(schema_dir)
    assert validator.do(declaration, "bgp.do.json") == []
    assert not validator.skipped and validator.checked["do"] == 1


def test_a_unit_stacks_gslb_ref_names_its_shared_device_and_reads_back_the_same() -> None:
    s = stack_of("prod")
    ref = gslb.UnitRef.of(s.unit("onprem-syd"), s.device(SHARED))
    exported = ref.as_output()
    assert exported["device"] == SHARED and exported["address"] == "10.30.0.245"
    assert gslb.UnitRef.from_output(exported) == ref
    own = gslb.UnitRef.of(s.unit("aws-syd"))
    assert "device" not in own.as_output() and gslb.UnitRef.from_output(own.as_output()) == own


# The yaml keys CIS reads the extended ConfigMap with, by yaml.UnmarshalStrict (an unknown key is an
# error). Ref: F5Networks/k8s-bigip-ctlr@v2.20.2:pkg/controller/types.go (extendedSpec, ClusterDetails)
EXTENDED_SPEC_KEYS = {
    "extendedRouteSpec", "baseRouteSpec", "externalClustersConfig", "highAvailabilityCIS", "mode",
    "localClusterRatio", "localClusterAdminState",
}  # fmt: skip
CLUSTER_DETAILS_KEYS = {"clusterName", "secret", "ratio", "adminState", "serviceTypeLBDiscovery"}
DISCOVERY_MODES = {"active-active", "active-standby", "ratio", "default"}


def test_the_extended_spec_uses_only_keys_and_a_mode_cis_reads() -> None:
    spec = multicluster.extended_spec(stack_of("prod").unit("onprem-syd"), "f5-cis")
    assert set(spec) <= EXTENDED_SPEC_KEYS and spec["mode"] in DISCOVERY_MODES
    for cluster in spec["externalClustersConfig"]:
        assert set(cluster) <= CLUSTER_DETAILS_KEYS
        namespace, name = cluster["secret"].split("/")  # CIS wants namespace/name
        assert (namespace, name) == ("f5-cis", multicluster.kubeconfig_secret(cluster["clusterName"]))
