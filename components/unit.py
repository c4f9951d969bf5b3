"""AtomicUnit: one cluster and the BIG-IP in front of it, composed from single-technology parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

from components import config, pki
from components.bigip import persist
from components.bigip.access import AccessArgs, AccessImports, imported_apps
from components.bigip.device import BigipDevice, DeviceArgs
from components.bigip.drain import CisDrain, DrainArgs, released_objects
from components.bigip.egress import EgressArgs, EgressGateway
from components.bigip.ingress import CisIngress, IngressArgs
from components.bigip.persist import ConfigSave, SaveArgs
from components.bigip.reencrypt import ReencryptArgs, ReencryptProfiles
from components.bigip.routing import BgpArgs, BigipBgp, tmsh_commands
from components.bigip.shared import SharedDevice
from components.bigip.waf import WafArgs, WafPolicies, templated_apps
from components.calico import Calico, CalicoArgs
from components.cis import Cis, CisArgs
from components.cluster import Cluster, ClusterArgs
from components.demo import DemoArgs, DemoWorkloads
from components.gslb import UnitRef
from components.mesh import Mesh, MeshArgs
from components.meshauthz import AuthzArgs, MeshAuthorization
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
    jwks_ca: pulumi.Input[str] | None = None  # the content of mesh.jwks.trustedCaFile
    egress_identity: pki.IssuedLeaf | None = None
    app_certs: dict[str, pki.IssuedLeaf] = field(default_factory=dict)
    # The shared BIG-IP the unit is on (bigip.device), made once for all of its units.
    shared_device: SharedDevice | None = None
    # Multi-cluster (components/multicluster.py): the kubeconfig of each peer this unit's CIS reads,
    # and the other units' apps this unit's cluster also serves.
    peer_kubeconfigs: tuple[tuple[str, pulumi.Input[str]], ...] = ()
    served: tuple[config.App, ...] = ()


@dataclass(frozen=True)
class ClusterSide:
    """What the BIG-IP side and the app routes need of the cluster side, built before them."""

    cluster: Cluster
    # CNI before workloads: nothing schedules pods until Calico is up.
    after: tuple[pulumi.Resource, ...]
    mesh: Mesh
    spaces: AppNamespaces
    nginx: NginxIngress | None
    bgp: bool  # Calico peers with the BIG-IP

    @property
    def routes_after(self) -> tuple[pulumi.Resource, ...]:
        """What an app's routes (Istio Gateway and VirtualService, Ingress) wait for."""
        nginx = (self.nginx.release,) if self.nginx else ()
        return (
            *self.after,
            self.mesh.istiod,
            *self.mesh.namespaces,
            *self.spaces.namespaces.values(),
            *nginx,
        )


@dataclass(frozen=True)
class CisReferenced:
    """What the CIS resources name on the BIG-IP (re-encrypt profiles, WAF policies), and the
    drain that holds back their deletion, and CIS's, until CIS has emptied its partition."""

    reencrypt: ReencryptProfiles
    waf: WafPolicies | None
    access: AccessImports | None
    drain: CisDrain

    @property
    def ready(self) -> tuple[pulumi.Resource, ...]:
        """What the CIS resources wait for."""
        policies = tuple(self.waf.policies.values()) if self.waf else ()
        imports = self.access.objects if self.access else ()
        return (*self.reencrypt.profiles, *self.drain.waits, *policies, *imports)


def bigip_password(
    unit: config.Unit, bigip: config.Bigip, password: pulumi.Input[str] | None
) -> pulumi.Input[str]:
    """The unit's BIG-IP password; without one the device and CIS would only refuse at deploy time."""
    if password is None:
        key = f"{config.CONFIG_NAMESPACE}:{bigip.password_secret}"
        raise ValueError(
            f"unit {unit.name}: bigip.passwordSecret {key}: no password was passed to the unit; set "
            f"it with `pulumi config set --secret {key}` (it prompts for the value) and build the "
            "unit with platform.build, which reads it"
        )
    return password


class AtomicUnit(pulumi.ComponentResource):
    kubeconfig: pulumi.Output[str]
    summary: dict[str, Any]
    # What GSLB needs of this unit, as plain config values (no Output of any unit resource), so
    # GSLB never waits on this unit's resources. None without a BIG-IP.
    gslb_ref: UnitRef | None

    def __init__(self, name: str, args: UnitArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:unit:AtomicUnit", name, None, opts)
        unit, bigip = args.unit, args.unit.bigip
        device = args.shared_device.device if args.shared_device else None
        self.gslb_ref = UnitRef.of(unit, device) if bigip is not None else None
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
        mesh = Mesh(
            f"{name}-mesh", MeshArgs(mesh_config, args.ca, name, after, unit.network, args.jwks_ca), k8s
        )
        spaces = AppNamespaces(f"{name}-namespaces", NamespacesArgs(unit, after, args.served), k8s)
        # Zero trust in every injected namespace: after istiod (the CRDs) and the namespaces.
        authz_after = (*after, mesh.istiod, *mesh.namespaces)
        MeshAuthorization(f"{name}-authz", AuthzArgs(unit, authz_after), k8s)
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
        side = ClusterSide(cluster, after, mesh, spaces, nginx, bgp=cni is not None)
        gateway = self._bigip_side(name, args, bigip, side) if bigip else None
        if bigip is None:
            # Nothing in front of the cluster: route the HTTP apps inside it (README: "Reaching
            # the dev apps").
            InClusterRoutes(f"{name}-routes", RoutesArgs(unit, side.routes_after), k8s)
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
        self, name: str, args: UnitArgs, bigip: config.Bigip, side: ClusterSide
    ) -> EgressGateway | None:
        """The BIG-IP in front of the cluster, in the order a device needs: the device, CIS, what
        CIS references, the CIS resources, BGP, egress, the save. Returns the egress gateway, if any."""
        unit = args.unit
        password = bigip_password(unit, bigip, args.bigip_password)
        k8s = self._on(side.cluster.provider)
        # Device: its provider, Pulumi's partition, and the save-on-destroy that every BIG-IP
        # object waits for, so that one is deleted after them all.
        shared = args.shared_device
        own_bgp = side.bgp and shared is None  # a shared device runs one BGP instance for its units
        bgp_commands = tmsh_commands(unit) if own_bgp else []
        # A shared device's save digests each of its units itself (SharedDevice).
        saved_state = persist.unit_digest(unit, bgp_commands) if shared is None else ""
        device_args = DeviceArgs(
            bigip, password, args.bigip_trusted_cert_path, saved_state, shared.shared if shared else None
        )
        device = BigipDevice(f"{name}-bigip", device_args, self._on())
        in_partition = (device.pulumi_partition, device.save_on_destroy)
        # CIS needs no partition made for it: AS3 creates its tenant (drain.py).
        cis_args = CisArgs(bigip, password, args.bigip_trusted_cert, side.after, unit, args.peer_kubeconfigs)
        cis = Cis(f"{name}-cis", cis_args, k8s)
        referenced = self._cis_referenced(name, args, bigip, password=password, device=device, cis=cis)
        ingress_after = (*side.routes_after, cis.crds, *referenced.ready)
        CisIngress(f"{name}-ingress", IngressArgs(unit, args.app_certs, ingress_after), k8s)
        on_device = self._on(device.provider)
        routing = BigipBgp(f"{name}-bgp", BgpArgs.of_unit(unit, in_partition), on_device) if own_bgp else None
        egress = self._egress(name, args, side, device, in_partition)
        # The provider never saves the running configuration: save it after the objects change,
        # and not after a BGP update the device refused.
        parts = (device, referenced.reencrypt, referenced.waf, referenced.access, routing, egress)
        objects = tuple(o for part in parts if part is not None for o in part.objects)
        identity = args.egress_identity if egress else None
        uploaded = [args.ca.chain_pem, args.ca.root_pem, *((identity.cert_pem,) if identity else ())]
        if shared is not None:
            shared.contribute(objects, uploaded)  # one save per device, after every unit's objects
            return egress
        trigger = pulumi.Output.all(saved_state, *uploaded).apply(persist.digest)
        checks = (routing.check,) if routing else ()
        ConfigSave(f"{name}-bigip-save", SaveArgs(objects, trigger, checks), on_device)
        return egress

    def _cis_referenced(
        self,
        name: str,
        args: UnitArgs,
        bigip: config.Bigip,
        *,
        password: pulumi.Input[str],
        device: BigipDevice,
        cis: Cis,
    ) -> CisReferenced:
        """What the CIS resources name on the BIG-IP exists before them; its deletion, and CIS's,
        waits until CIS has emptied its partition, or released one object."""
        unit = args.unit
        on_device = self._on(device.provider)
        waf_args = WafArgs(unit, device.login, (device.save_on_destroy,))
        waf = WafPolicies(f"{name}-waf", waf_args, on_device) if templated_apps(unit) else None
        reencrypt_args = ReencryptArgs(unit, args.ca.root_pem, (device.save_on_destroy,))
        reencrypt = ReencryptProfiles(f"{name}-reencrypt", reencrypt_args, on_device)
        access_args = AccessArgs(unit, (device.save_on_destroy,))
        access = AccessImports(f"{name}-access", access_args, on_device) if imported_apps(unit) else None
        held = (
            cis.release,
            *reencrypt.objects,
            *(waf.objects if waf else ()),
            *(access.objects if access else ()),
        )
        drain_args = DrainArgs(bigip, password, args.bigip_trusted_cert, held, released_objects(unit))
        drain = CisDrain(f"{name}-cis-drain", drain_args, self._on())
        return CisReferenced(reencrypt, waf, access, drain)

    def _egress(
        self,
        name: str,
        args: UnitArgs,
        side: ClusterSide,
        device: BigipDevice,
        in_partition: tuple[pulumi.Resource, ...],
    ) -> EgressGateway | None:
        unit = args.unit
        if unit.egress is None or args.egress_identity is None:
            return None
        egress_args = EgressArgs(
            unit,
            args.egress_identity,
            pki.egress_spiffe_id(unit.mesh.trust_domain),
            args.ca.chain_pem,
            args.ca.subject_rdns,
            device.login,
            after=in_partition,
            mesh_after=(side.mesh.istiod,),
        )
        return EgressGateway(f"{name}-egress", egress_args, self._on(side.cluster.provider, device.provider))

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
