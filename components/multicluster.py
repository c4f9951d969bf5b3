"""CIS multi-cluster mode: one virtual server whose pool holds the pods of several clusters.

An app with `multiCluster` is served through its unit's virtual server by its unit's cluster and
by the clusters of its peers, units on the same shared BIG-IP (whose BGP peer groups route to
their pods). The app's unit runs CIS in multi-cluster mode `standalone` (CIS in that cluster only;
the peers keep their own CIS for their own partitions), in CIS's `default` discovery mode: every
pool of that CIS names its services per cluster in `multiClusterServices` (clusterName,
namespace, service, servicePort, weight); a pool without them gets no members in that mode. The
peers' kubeconfigs are Secrets in CIS's namespace (key `kubeconfig`), listed with their cluster
names in the extended ConfigMap's `externalClustersConfig`.

cpaas's `active-active` gives every cluster the same weight (CIS's default of 100), `ratio` the
configured weights. Not CIS's own `ratio`/`active-active` discovery modes: those ignore
multiClusterServices and add a same-named service of every cluster to every pool of that CIS, and
CIS's `active-active` is for a primary/secondary pair of CIS managing one partition.

Ref: F5Networks/k8s-bigip-ctlr@v2.20.2:cmd/k8s-bigip-ctlr/main.go (--multi-cluster-mode
     standalone|primary|secondary, --local-cluster-name, --extended-spec-configmap namespace/name),
     pkg/controller/types.go (extendedSpec: mode, externalClustersConfig[clusterName, secret,
     ratio, adminState], highAvailabilityCIS; modes active-active, active-standby, ratio, default),
     pkg/controller/worker.go (processConfigMap: yaml.UnmarshalStrict of data.extendedSpec),
     pkg/controller/nativeResourceWorker.go (readMultiClusterConfigFromGlobalCM; the secret's
     `kubeconfig` key; CIS exits when the extended ConfigMap is missing at start),
     pkg/controller/informers.go (the ConfigMap informer selects label f5nr=true),
     pkg/controller/resourceConfig.go (GetPoolBackendsForVS/TS: default mode takes only
     multiClusterServices, weight 100 when unset)
Ref: F5Networks/k8s-bigip-ctlr@v2.20.4:docs/config_examples/multicluster/ (README.md,
     default-mode/README.md, rbac/kube-config-secret-example.yaml)
"""

from __future__ import annotations

from typing import Any

from components import config

EXTENDED_SPEC = "cpaas-extended-spec"  # the ConfigMap, in CIS's namespace
EXTENDED_SPEC_LABELS = {"f5nr": "true"}
MODE = "standalone"  # --multi-cluster-mode
DISCOVERY = "default"  # extendedSpec.mode


def kubeconfig_secret(peer: str) -> str:
    return f"cpaas-kubeconfig-{peer}"


def peers(unit: config.Unit) -> tuple[str, ...]:
    """The units whose clusters this unit's CIS reads, in order of first mention."""
    found: dict[str, None] = {}
    for app in unit.apps:
        if app.multi_cluster is not None:
            found.update((p.unit, None) for p in app.multi_cluster.peers)
    return tuple(found)


def served_by(stack: config.StackConfig, unit: config.Unit) -> tuple[config.App, ...]:
    """The other units' apps whose pools also name this unit's cluster (the inverse of peers)."""
    return tuple(
        app
        for other in stack.units
        for app in other.apps
        if app.multi_cluster and any(p.unit == unit.name for p in app.multi_cluster.peers)
    )


def cis_args(unit: config.Unit, namespace: str) -> dict[str, Any]:
    """The CIS arguments (chart `args`, `_` becoming `-`) of a unit whose CIS runs multi-cluster."""
    if not peers(unit):
        return {}
    return {
        "multi_cluster_mode": MODE,
        "local_cluster_name": unit.name,
        "extended_spec_configmap": f"{namespace}/{EXTENDED_SPEC}",
    }


def extended_spec(unit: config.Unit, namespace: str) -> dict[str, Any]:
    """The extended ConfigMap's `extendedSpec` (YAML in the ConfigMap). Pure: test it directly."""
    return {
        "mode": DISCOVERY,
        "externalClustersConfig": [
            {"clusterName": peer, "secret": f"{namespace}/{kubeconfig_secret(peer)}"} for peer in peers(unit)
        ],
    }


def services(
    unit: config.Unit, app: config.App, service: str, namespace: str, port: int
) -> list[dict[str, Any]]:
    """A pool's multiClusterServices: this unit's cluster, then each peer's, with the ratio weights."""
    multi = app.multi_cluster
    local: dict[str, Any] = {
        "clusterName": unit.name,
        "namespace": namespace,
        "service": service,
        "servicePort": port,
    }
    if multi is None:
        return [local]
    out = [local | _weight(multi, multi.weight)]
    out += [local | {"clusterName": p.unit} | _weight(multi, p.weight) for p in multi.peers]
    return out


def _weight(multi: config.MultiCluster, weight: int | None) -> dict[str, Any]:
    return {"weight": weight} if multi.mode == "ratio" and weight is not None else {}


def with_services(unit: config.Unit, app: config.App, spec: dict[str, Any], namespace: str) -> dict[str, Any]:
    """A CIS VirtualServer or TransportServer spec whose pools also name their services per
    cluster, when the unit's CIS runs multi-cluster (every pool needs them then); else `spec`."""
    if not peers(unit):
        return spec
    pools = spec["pools"] if "pools" in spec else [spec["pool"]]
    for pool in pools:
        pool["multiClusterServices"] = services(unit, app, pool["service"], namespace, pool["servicePort"])
    return spec
