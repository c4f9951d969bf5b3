"""AtomicUnit: one cluster and the BIG-IP in front of it, composed from single-technology parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

from components import config, pki
from components.bigip import persist
from components.bigip.device import BigipDevice, DeviceArgs
from components.bigip.drain import CisDrain, DrainArgs
from components.bigip.egress import EgressArgs, EgressGateway
from components.bigip.ingress import CisIngress, IngressArgs
from components.bigip.persist import ConfigSave, SaveArgs
from components.bigip.reencrypt import ReencryptArgs, ReencryptProfiles
from components.bigip.routing import BgpArgs, BigipBgp, tmsh_commands
from components.bigip.waf import WafArgs, WafPolicies, templated_apps
from components.calico import Calico, CalicoArgs
from components.cis import Cis, CisArgs
from components.cluster import Cluster, ClusterArgs
from components.demo import DemoArgs, DemoWorkloads
from components.gslb import UnitRef
from components.mesh import Mesh, MeshArgs
from components.namespaces import AppNamespaces, NamespacesArgs
from components.nginx import NginxIngress, NginxIngressArgs
from components.observability import Observability, ObservabilityArgs, effective_mesh
from components.observability import enabled as observability_enabled
from components.routes import InClusterRoutes, RoutesArgs


@dataclass(frozen=True)
class UnitArgs:
    environment: config.Environment
    unit: config.Unit
    ca: pki.IssuedCa
    kubeconfig: pulumi.Input[str] | None = None
    bigip_password: pulumi.Input[str] | None = None
    bigip_trusted_cert: pulumi.Input[str] | None = None
    bigip_trusted_cert_path: pulumi.Input[str] | None = None
    egress_identity: pki.IssuedLeaf | None = None
    app_certs: dict[str, pki.IssuedLeaf] = field(default_factory=dict)


class AtomicUnit(pulumi.ComponentResource):
    kubeconfig: pulumi.Output[str]
    summary: dict[str, Any]
    # What GSLB needs of this unit, as plain config values (no Output of any unit resource), so
    # GSLB never waits on this unit's resources. None without a BIG-IP.
    gslb_ref: UnitRef | None

    def __init__(self, name: str, args: UnitArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:unit:AtomicUnit", name, None, opts)
        unit, bigip = args.unit, args.unit.bigip
        self.gslb_ref = UnitRef.of(unit) if bigip is not None else None
        cluster = Cluster(f"{name}-cluster", ClusterArgs(unit, args.kubeconfig), self._on())
        k8s = self._on(cluster.provider)
        cni = (
            Calico(f"{name}-calico", CalicoArgs(unit, cluster.kubeconfig, cluster.context), k8s)
            if unit.uses_calico
            else None
        )
        # CNI before workloads: nothing schedules pods until Calico is up.
        after: tuple[pulumi.Resource, ...] = (cni.ready,) if cni else ()
        # Mesh tracing follows observability unless the stack file sets it (Jaeger receives it).
        mesh_config = effective_mesh(unit, args.environment)
        mesh = Mesh(f"{name}-mesh", MeshArgs(mesh_config, args.ca, name, after), k8s)
        spaces = AppNamespaces(f"{name}-namespaces", NamespacesArgs(unit, after), k8s)
        nginx = (
            NginxIngress(f"{name}-nginx", NginxIngressArgs(unit.nginx, after), k8s)
            if unit.nginx.enabled
            else None
        )
        observability = (
            Observability(f"{name}-observability", ObservabilityArgs(unit, args.environment, after), k8s)
            if observability_enabled(unit.observability, args.environment)
            else None
        )
        gateway = (
            self._bigip_side(
                name,
                args,
                cluster=cluster,
                mesh=mesh,
                nginx=nginx,
                spaces=spaces,
                after=after,
                bgp=cni is not None,
            )
            if bigip
            else None
        )
        if bigip is None:
            # Nothing in front of the cluster: route the HTTP apps inside it (README: "Reaching
            # the dev apps").
            route_after = (*after, mesh.istiod, *mesh.namespaces, *spaces.namespaces.values())
            route_after = (*route_after, *((nginx.release,) if nginx else ()))
            InClusterRoutes(f"{name}-routes", RoutesArgs(unit, route_after), k8s)
        if unit.demo_workloads:
            demo_after = (*after, mesh, spaces, *((nginx,) if nginx else ()))
            DemoWorkloads(f"{name}-demo", DemoArgs(unit, gateway.host if gateway else None, demo_after), k8s)
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
            "cisPartition": bigip.cis_partition if bigip else None,
            "skipped": skipped(unit)
            + ([] if observability is not None else ["observability: off (on by default in prod only)"]),
        }
        self.register_outputs(self.summary)

    def _bigip_side(
        self,
        name: str,
        args: UnitArgs,
        *,
        cluster: Cluster,
        mesh: Mesh,
        nginx: NginxIngress | None,
        spaces: AppNamespaces,
        after: tuple[pulumi.Resource, ...],
        bgp: bool,
    ) -> EgressGateway | None:
        """The BIG-IP in front of the cluster: device, CIS, ingress, egress, BGP. Returns the
        egress gateway, if any."""
        unit, bigip = args.unit, args.unit.bigip
        assert bigip is not None
        k8s = self._on(cluster.provider)
        bgp_commands = tmsh_commands(unit) if bgp else []
        saved_state = persist.unit_digest(unit, bgp_commands)
        device = BigipDevice(
            f"{name}-bigip",
            DeviceArgs(bigip, args.bigip_password or "", args.bigip_trusted_cert_path, saved_state),
            self._on(),
        )
        # Every BIG-IP object waits for the save-on-destroy, so that one is deleted after them all.
        in_partition = (device.pulumi_partition, device.save_on_destroy)
        on_device = self._on(device.provider)
        # CIS needs no partition made for it: AS3 creates its tenant (drain.py).
        cis = Cis(
            f"{name}-cis", CisArgs(bigip, args.bigip_password or "", args.bigip_trusted_cert, after), k8s
        )
        # What the CIS resources name on the BIG-IP (WAF policies, re-encrypt profiles) exists first.
        waf_args = WafArgs(unit, (device.save_on_destroy,))
        waf = WafPolicies(f"{name}-waf", waf_args, on_device) if templated_apps(unit) else None
        reencrypt_args = ReencryptArgs(unit, args.ca.root_pem, (device.save_on_destroy,))
        reencrypt = ReencryptProfiles(f"{name}-reencrypt", reencrypt_args, on_device)
        # Deleted after the CIS resources and before what their BIG-IP objects name, and CIS: its
        # deletion waits until CIS has emptied its partition.
        referenced = (cis.release, *reencrypt.objects, *(waf.objects if waf else ()))
        drain_args = DrainArgs(bigip, args.bigip_password or "", args.bigip_trusted_cert, referenced)
        drain = CisDrain(f"{name}-cis-drain", drain_args, self._on())
        ready = (
            *after,
            cis.crds,
            mesh.istiod,
            *mesh.namespaces,
            *spaces.namespaces.values(),
            *reencrypt.profiles,
            drain.wait,
        )
        ready = (*ready, *((nginx.release,) if nginx else ()))
        ready = (*ready, *(waf.policies.values() if waf else ()))
        CisIngress(f"{name}-ingress", IngressArgs(unit, args.app_certs, ready), k8s)
        routing = BigipBgp(f"{name}-bgp", BgpArgs(unit, in_partition), on_device) if bgp else None
        egress = None
        if unit.egress is not None and args.egress_identity is not None:
            egress_args = EgressArgs(
                unit,
                args.egress_identity,
                pki.egress_spiffe_id(unit.mesh.trust_domain),
                args.ca.chain_pem,
                args.ca.subject_rdns,
                after=in_partition,
                mesh_after=(mesh.istiod,),
            )
            egress = EgressGateway(f"{name}-egress", egress_args, self._on(cluster.provider, device.provider))
        # The provider never saves the running configuration: save it after the objects change,
        # and not after a BGP update the device refused.
        objects = [part.objects for part in (device, reencrypt, waf, routing, egress) if part is not None]
        identity = args.egress_identity if egress else None
        uploaded = [args.ca.chain_pem, args.ca.root_pem, *((identity.cert_pem,) if identity else ())]
        trigger = pulumi.Output.all(saved_state, *uploaded).apply(persist.digest)
        checks = (routing.check,) if routing else ()
        save_args = SaveArgs(tuple(o for group in objects for o in group), trigger, checks)
        ConfigSave(f"{name}-bigip-save", save_args, on_device)
        return egress

    def _on(self, *providers: pulumi.ProviderResource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, providers=list(providers) or None)


def skipped(unit: config.Unit) -> list[str]:
    """What this unit leaves out and why, for the render summary and the stack outputs."""
    out: list[str] = []
    if unit.bigip is None:
        out.append(
            "bigip: not configured, so CIS and every BIG-IP-side resource are skipped; HTTP apps are "
            "routed inside the cluster (README: Reaching the dev apps)"
        )
    elif unit.egress is None:
        out.append("egress: not configured, so no BIG-IP egress gateway")
    if not unit.nginx.enabled:
        out.append("nginx: disabled in config")
    return out
