"""AtomicUnit: one cluster and the BIG-IP in front of it, composed from single-technology parts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components import config
from components.calico import Calico, CalicoArgs
from components.cis import Cis, CisArgs
from components.cluster import Cluster, ClusterArgs
from components.mesh import Mesh, MeshArgs
from components.nginx import NginxIngress, NginxIngressArgs
from components.pki import IssuedCa


@dataclass(frozen=True)
class UnitArgs:
    environment: config.Environment
    unit: config.Unit
    ca: IssuedCa
    kubeconfig: pulumi.Input[str] | None = None
    bigip_password: pulumi.Input[str] | None = None
    bigip_trusted_cert: pulumi.Input[str] | None = None


class AtomicUnit(pulumi.ComponentResource):
    kubeconfig: pulumi.Output[str]
    summary: dict[str, Any]

    def __init__(self, name: str, args: UnitArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:unit:AtomicUnit", name, None, opts)
        unit = args.unit
        cluster = Cluster(f"{name}-cluster", ClusterArgs(unit, args.kubeconfig), _child(self))
        on_cluster = _child(self, providers=[cluster.provider])
        cni = (
            Calico(f"{name}-calico", CalicoArgs(unit, cluster.kubeconfig, cluster.context), on_cluster)
            if unit.uses_calico
            else None
        )
        # CNI before workloads: nothing schedules pods until Calico is up.
        after: tuple[pulumi.Resource, ...] = (cni.ready,) if cni else ()
        mesh = Mesh(f"{name}-mesh", MeshArgs(unit.mesh, args.ca, name, after), on_cluster)
        nginx = (
            NginxIngress(f"{name}-nginx", NginxIngressArgs(unit.nginx, after), on_cluster)
            if unit.nginx.enabled
            else None
        )
        cis = (
            Cis(
                f"{name}-cis",
                CisArgs(unit.bigip, args.bigip_password or "", args.bigip_trusted_cert, after),
                on_cluster,
            )
            if unit.bigip is not None
            else None
        )
        self.kubeconfig = cluster.kubeconfig
        self.summary = {
            "cloud": unit.cloud,
            "region": unit.region,
            "cluster": unit.cluster.source,
            "kubernetesVersion": cluster.kubernetes_version,
            "cni": "calico-bgp" if cni else "cloud-native",
            "trustDomain": unit.mesh.trust_domain,
            "intermediateCertPem": args.ca.cert_pem,
            "ingressGateway": mesh.gateway_service,
            "nginx": f"{nginx.namespace}/{nginx.service_name}" if nginx else None,
            "cisPartition": unit.bigip.cis_partition if cis and unit.bigip else None,
            "skipped": skipped(unit),
        }
        self.register_outputs(self.summary)


def skipped(unit: config.Unit) -> list[str]:
    """What this unit leaves out and why, for the render summary and the stack outputs."""
    out: list[str] = []
    if unit.bigip is None:
        out.append("bigip: not configured, so CIS and every BIG-IP-side resource are skipped")
    if not unit.nginx.enabled:
        out.append("nginx: disabled in config")
    return out


def _child(
    parent: pulumi.Resource, providers: list[pulumi.ProviderResource] | None = None
) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, providers=providers)
