"""Calico as the unit's CNI, peering BGP with the BIG-IP so it can route to pod IPs.

CRDs: v3.32 moved them out of the tigera-operator chart into CRD charts that upstream applies
with `helm template | kubectl apply --server-side`, because a Helm release of them exceeds the
1 MiB release Secret. We apply the same CRDs (the release's `v1_crd_projectcalico_org.yaml`)
with server-side apply instead, then install the operator chart, which creates the
`Installation` from values. The operator runs Calico's API server, which serves the
`projectcalico.org/v3` BGP objects; we wait for it before creating them.
Ref: https://docs.tigera.io/calico/latest/getting-started/kubernetes/helm
Ref: https://docs.tigera.io/calico/latest/networking/configuring/bgp
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from components import config, helm, versions

NAMESPACE = "tigera-operator"
RELEASE = "calico"
CRDS_URL = (
    f"https://raw.githubusercontent.com/projectcalico/calico/{versions.CALICO_COMMIT}/"
    "manifests/v1_crd_projectcalico_org.yaml"
)
# Matches the BIG-IP side's graceful-restart time.
GRACEFUL_RESTART = "120s"


def calico_cni(unit: config.Unit) -> config.CalicoBgp:
    """The unit's Calico settings: only calico-bgp units have Calico (and a BGP peering)."""
    cni = unit.network.cni
    if not isinstance(cni, config.CalicoBgp):
        raise ValueError(
            f"unit {unit.name}: network.cni is {cni.type}, not calico-bgp, so it has no Calico; "
            "build Calico only where unit.uses_calico"
        )
    return cni


def operator_values(unit: config.Unit) -> dict[str, Any]:
    """tigera-operator chart values; the chart renders `Installation default` from them."""
    cni = calico_cni(unit)
    network: dict[str, Any] = {
        "bgp": "Enabled",
        "ipPools": [
            {
                "name": "default-ipv4-ippool",
                "cidr": str(unit.network.pod_cidr),
                "encapsulation": cni.encapsulation,
                "natOutgoing": "Enabled" if cni.nat_outgoing else "Disabled",
                "blockSize": cni.block_size,
                "nodeSelector": "all()",
            }
        ],
    }
    if unit.is_local:
        # k3s service load balancing needs forwarding inside pods (k3d's Calico guide).
        network["containerIPForwarding"] = "Enabled"
    return {
        "installation": {
            "enabled": True,
            "kubernetesProvider": "",
            "cni": {"type": "Calico", "ipam": {"type": "Calico"}},
            "calicoNetwork": network,
            "controlPlaneReplicas": 1 if unit.is_local else 2,
        },
        "apiServer": {"enabled": True},
        # The CRDs have one owner: Pulumi applies them (above); the operator must not rewrite them.
        "manageCRDs": False,
        "tigeraOperator": {
            "image": versions.TIGERA_OPERATOR_IMAGE,
            "version": versions.TIGERA_OPERATOR_VERSION,
            "registry": versions.TIGERA_OPERATOR_REGISTRY,
        },
    }


def bgp_configuration(cni: config.CalicoBgp) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "asNumber": cni.asn,
        "nodeToNodeMeshEnabled": cni.node_to_node_mesh,
        "logSeverityScreen": "Info",
    }
    if cni.node_to_node_mesh:
        spec["nodeMeshMaxRestartTime"] = GRACEFUL_RESTART
    return spec


def bgp_peer(address: IPv4Address, bigip: config.Bigip) -> dict[str, Any]:
    """A global peer: every node peers with this BIG-IP self IP (eBGP)."""
    return {
        "peerIP": str(address),
        "asNumber": bigip.asn,
        "maxRestartTime": GRACEFUL_RESTART,
    }


def peer_name(address: IPv4Address) -> str:
    return "bigip-" + str(address).replace(".", "-")


def wait_script() -> str:
    """Block until Calico's API server serves projectcalico.org/v3 (it needs a working CNI,
    so this also means the CNI is up). Needs kubectl where `pulumi up` runs."""
    return (
        "command -v kubectl >/dev/null 2>&1 || { echo 'cpaas: kubectl is required to wait for "
        "Calico; install it (see README)' >&2; exit 127; }; "
        'cfg=$(mktemp) && trap \'rm -f "$cfg"\' EXIT && printf "%s" "$CPAAS_KUBECONFIG" > "$cfg" && '
        'ctx=(); [ -n "$CPAAS_CONTEXT" ] && ctx=(--context "$CPAAS_CONTEXT"); '
        "for _ in $(seq 1 90); do "
        'kubectl --kubeconfig "$cfg" "${ctx[@]}" get apiservice v3.projectcalico.org >/dev/null 2>&1 '
        "&& break; sleep 10; done; "
        'kubectl --kubeconfig "$cfg" "${ctx[@]}" wait --for=condition=Available --timeout=900s '
        "apiservice/v3.projectcalico.org"
    )


@dataclass(frozen=True)
class CalicoArgs:
    unit: config.Unit
    kubeconfig: pulumi.Input[str]
    context: str | None = None


class Calico(pulumi.ComponentResource):
    ready: pulumi.Resource

    def __init__(self, name: str, args: CalicoArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:calico:Calico", name, None, opts)
        unit = args.unit
        cni = calico_cni(unit)
        child = pulumi.ResourceOptions(parent=self)
        crds = k8s.yaml.v2.ConfigFile(f"{name}-crds", file=CRDS_URL, opts=child)
        home = helm.home(name, self, NAMESPACE, enforce="privileged")
        operator = home.release(
            f"{name}-operator",
            versions.TIGERA_OPERATOR,
            RELEASE,
            operator_values(unit),
            timeout=900,
            after=[crds],
        )
        self.ready = command.local.Command(
            f"{name}-api-ready",
            create=wait_script(),
            environment={
                "CPAAS_KUBECONFIG": pulumi.Output.secret(args.kubeconfig),
                "CPAAS_CONTEXT": args.context or "",
            },
            interpreter=["/bin/bash", "-c"],
            # Every helm upgrade makes a new revision (and restarts what the operator runs); a
            # replaced release (new name or namespace) has a new ID and starts again at 1.
            # Ref: https://github.com/pulumi/pulumi-kubernetes/blob/v4.32.0/provider/pkg/provider/helm_release.go
            triggers=[operator.id, operator.status.revision],
            logging=command.local.Logging.STDERR,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[operator]),
        )
        after_api = pulumi.ResourceOptions(parent=self, depends_on=[self.ready])
        # calico-node creates BGPConfiguration "default" at start-up (v3.32), so it exists by now
        # and a create would fail with AlreadyExists: patch it (server-side apply, taking these
        # fields from calico-node). Deleting the patch gives the fields up, not the object.
        # Ref: https://github.com/projectcalico/calico/blob/v3.32.1/node/pkg/lifecycle/startup/startup.go
        # Ref: https://www.pulumi.com/registry/packages/kubernetes/how-to-guides/managing-resources-with-server-side-apply/
        k8s.apiextensions.CustomResourcePatch(
            f"{name}-bgp-configuration",
            api_version="projectcalico.org/v3",
            kind="BGPConfiguration",
            metadata={"name": "default", "annotations": {"pulumi.com/patchForce": "true"}},
            spec=bgp_configuration(cni),
            opts=after_api,
        )
        bigip = unit.bigip
        for address in bigip.self_ips if bigip else ():
            k8s.apiextensions.CustomResource(
                f"{name}-peer-{peer_name(address)}",
                api_version="projectcalico.org/v3",
                kind="BGPPeer",
                metadata={"name": peer_name(address)},
                spec=bgp_peer(address, bigip),  # type: ignore[arg-type]
                opts=after_api,
            )
        self.register_outputs({"podCidr": str(unit.network.pod_cidr), "asn": cni.asn})
