"""Egress gateway: mesh workloads leave through the BIG-IP with their own SPIFFE identity.

Pods leaving a cluster are SNATed to node IPs, so the firewall in front of legacy systems
cannot tell which app is calling. Here a pod's sidecar originates mTLS (ISTIO_MUTUAL) with the
pod's own workload certificate to a BIG-IP virtual server. The BIG-IP requires a client
certificate from the mesh CA, an iRule authorises the SPIFFE ID against a data group, and the
connection leaves SNATed (per app where configured) towards the forward proxy.
Traffic must come from the sidecar, not an Istio egress gateway, which would replace the pod's
identity with the gateway's. Apps use the egress host as their HTTP proxy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_f5bigip as f5bigip
import pulumi_kubernetes as k8s

from components import config, mesh
from components.bigip import irules
from components.bigip.device import Login
from components.pki import IssuedLeaf

# The BIG-IP identity's key and certificate, named after its SPIFFE service account. Earlier
# versions uploaded them as two resources named egress-identity.*: other names let the pair be
# created beside those, the profile move to it, and the old ones be deleted in the same update.
IDENTITY = "egress-gateway"
IDENTITY_CERT = f"{IDENTITY}.crt"
IDENTITY_KEY = f"{IDENTITY}.key"
MESH_CA = "mesh-ca-bundle.crt"
# Plain TCP (HTTP proxy protocol) from the app; the sidecar wraps it in mTLS to the VIP's TLS port.
MESH_PORT = 80


@dataclass(frozen=True)
class Names:
    """Full BIG-IP paths of the egress objects, all in the Pulumi-owned partition."""

    partition: str

    def path(self, leaf: str) -> str:
        return f"/{self.partition}/{leaf}"

    @property
    def profile(self) -> str:
        return self.path("egress-mtls")

    @property
    def pool(self) -> str:
        return self.path("egress-forward-proxy")

    @property
    def snat_pool(self) -> str:
        return self.path("egress-snat")

    def app_snat_pool(self, namespace: str) -> str:
        """The SNAT pool of a namespace with its own address: that address alone."""
        return self.path(f"egress-snat-{namespace}")

    @property
    def data_group(self) -> str:
        return self.path("egress-allow")

    @property
    def irule(self) -> str:
        return self.path("egress-spiffe-authz")

    @property
    def virtual_server(self) -> str:
        return self.path("egress")


def egress_host(unit: config.Unit) -> str:
    """The name apps in the mesh use for the egress gateway (as their HTTP proxy)."""
    return f"egress.{unit.name}.cpaas.internal"


def _egress(unit: config.Unit) -> config.Egress:
    if unit.egress is None:
        raise ValueError(
            f"unit {unit.name}: no egress is configured, so there is no egress gateway to register in "
            "the mesh; build it only for units with egress"
        )
    return unit.egress


def service_entry(unit: config.Unit, spiffe_id: str) -> dict[str, Any]:
    """Registers the BIG-IP VIP in the mesh (what `istioctl register` did before it was removed)."""
    egress = _egress(unit)
    return {
        "hosts": [egress_host(unit)],
        "addresses": [f"{egress.vip}/32"],
        # TCP, not HTTP: apps use the host as their HTTP proxy, so requests carry other Hosts;
        # the sidecar must match on the VIP and port alone.
        "ports": [{"number": MESH_PORT, "name": "tcp-egress", "protocol": "TCP", "targetPort": egress.port}],
        "location": "MESH_EXTERNAL",
        "resolution": "STATIC",
        "endpoints": [{"address": str(egress.vip)}],
        # Secure naming: sidecars accept only a server certificate with this SAN.
        "subjectAltNames": [spiffe_id],
        "exportTo": sorted({a.namespace for a in egress.allow}),
    }


def destination_rule(unit: config.Unit) -> dict[str, Any]:
    """ISTIO_MUTUAL: the sidecar presents the pod's own SPIFFE certificate to the BIG-IP."""
    egress = _egress(unit)
    return {
        "host": egress_host(unit),
        "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL", "sni": egress_host(unit)}},
        "exportTo": sorted({a.namespace for a in egress.allow}),
    }


@dataclass(frozen=True)
class EgressArgs:
    unit: config.Unit
    identity: IssuedLeaf
    spiffe_id: str
    # The mesh CA chain (unit intermediate, then org root): the only issuers the BIG-IP trusts.
    mesh_ca_pem: pulumi.Input[str]
    # The unit intermediate's subject ("attr=value"): the iRule admits only leaves it issued.
    mesh_ca_subject: tuple[str, ...]
    # The unit's BIG-IP, for the identity upload's own provider (device.Login).
    login: Login
    # Children wait for these: a component's depends_on does not reach its children.
    after: tuple[pulumi.Resource, ...] = ()
    # The mesh side (ServiceEntry, DestinationRule) also waits for these (Istio's CRDs, istiod).
    mesh_after: tuple[pulumi.Resource, ...] = ()


class EgressGateway(pulumi.ComponentResource):
    """BIG-IP objects (f5bigip provider) plus the mesh registration (kubernetes provider);
    both providers are passed once through `providers=` and inherited."""

    def __init__(self, name: str, args: EgressArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:bigip:EgressGateway", name, None, opts)
        unit, bigip, egress = args.unit, args.unit.bigip, args.unit.egress
        if bigip is None or egress is None:
            raise ValueError(f"unit {unit.name}: an egress gateway needs bigip and egress config")
        names = Names(bigip.pulumi_partition)
        after = list(args.after)
        # BIG-IP names are fixed, so a replacement can never be created beside the old object:
        # every named BIG-IP object is deleted before it is replaced.
        first = pulumi.ResourceOptions(parent=self, depends_on=after, delete_before_replace=True)

        def after_these(*deps: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, depends_on=[*after, *deps], delete_before_replace=True)

        mesh_side = pulumi.ResourceOptions(parent=self, depends_on=[*after, *args.mesh_after])

        # Key and certificate in one resource: the provider uploads (and on a change replaces) both in
        # one transaction, so the profile never holds a key beside a certificate it does not match.
        # Named /<partition>/<key_name> and /<partition>/<cert_name> on the device, as given.
        # On a provider of its own: a failed upload keeps its provider process locked (Login).
        # Ref: F5Networks/terraform-provider-bigip@v1.26.0:bigip/resource_bigip_ssl_key_cert.go
        key_pem: pulumi.Output[str] = pulumi.Output.secret(args.identity.key_pem)
        identity = f5bigip.SslKeyCert(
            f"{name}-identity",
            cert_name=IDENTITY_CERT,
            key_name=IDENTITY_KEY,
            partition=names.partition,
            cert_content=args.identity.cert_pem,
            key_content=key_pem,
            opts=pulumi.ResourceOptions.merge(
                first, pulumi.ResourceOptions(provider=args.login.provider(f"{name}-identity-provider", self))
            ),
        )
        ca = f5bigip.ssl.Certificate(
            f"{name}-mesh-ca",
            name=MESH_CA,
            partition=names.partition,
            content=args.mesh_ca_pem,
            opts=first,
        )
        profile = f5bigip.ltm.ProfileClientSsl(
            f"{name}-client-ssl",
            name=names.profile,
            defaults_from="/Common/clientssl",
            cert_key_chain=f5bigip.ltm.ProfileClientSslCertKeyChainArgs(
                name=IDENTITY,
                cert=names.path(IDENTITY_CERT),
                key=names.path(IDENTITY_KEY),
                chain=names.path(MESH_CA),
            ),
            # mTLS: a client certificate is mandatory and must chain to the mesh CA only.
            peer_cert_mode="require",
            authenticate="always",
            authenticate_depth=2,
            ca_file=names.path(MESH_CA),
            client_cert_ca=names.path(MESH_CA),
            # The iRule reads the client certificate after the handshake.
            retain_certificate="true",
            opts=after_these(identity, ca),
        )
        pool = f5bigip.ltm.Pool(
            f"{name}-pool",
            name=names.pool,
            load_balancing_mode="round-robin",
            monitors=["/Common/tcp"],
            allow_snat="yes",
            allow_nat="yes",
            opts=first,
        )
        # An explicit node: one the attachment creates from "address:port" stays behind when the
        # attachment is deleted, and a partition that still holds it cannot be deleted. Named by
        # its address (as BIG-IP names nodes), so a new address makes a new node beside the old.
        node = f5bigip.ltm.Node(
            f"{name}-forward-proxy-node",
            name=names.path(str(egress.forward_proxy.address)),
            address=str(egress.forward_proxy.address),
            description=f"cpaas {unit.name}: forward proxy behind the egress gateway",
            # The provider's default is /Common/icmp; a node made by the pool attachment had the
            # system's node default, and the pool's tcp monitor checks the proxy anyway.
            monitor="default",
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )
        member = f5bigip.ltm.PoolAttachment(
            f"{name}-pool-member",
            pool=pool.name,
            node=node.name.apply(lambda n: f"{n}:{egress.forward_proxy.port}"),
            opts=after_these(pool, node),
        )
        own = {a.namespace: str(a.snat_address) for a in egress.allow if a.snat_address is not None}
        # A SNAT pool member makes a snat-translation object that outlives the pool; remove them
        # after the pools (this command is deleted after everything that depends on it). A new
        # address list replaces the command, so the old copy removes the addresses dropped
        # (deleting one still in use fails harmlessly); an update would only store the new list.
        addresses = [*(str(a) for a in egress.snat_addresses), *own.values()]
        translations = f5bigip.Command(
            f"{name}-snat-translations-cleanup",
            commands=[f"delete ltm snat-translation {names.path(a)}" for a in addresses],
            when="destroy",
            opts=pulumi.ResourceOptions(parent=self, depends_on=after, replace_on_changes=["commands"]),
        )
        # The virtual server's pool is shared by every namespace without an address of its own,
        # so it never holds a per-app address (config keeps them apart): the iRule sends those
        # apps to their own pool. Pools, not `snat <address>`: BIG-IP makes each pool member a
        # SNAT translation address (the objects the command above removes).
        snat_pool = f5bigip.ltm.SnatPool(
            f"{name}-snat-pool",
            name=names.snat_pool,
            members=[names.path(str(a)) for a in egress.snat_addresses],
            opts=after_these(translations),
        )
        app_snat_pools = [
            f5bigip.ltm.SnatPool(
                f"{name}-snat-pool-{namespace}",
                name=names.app_snat_pool(namespace),
                members=[names.path(address)],
                opts=after_these(translations),
            )
            for namespace, address in sorted(own.items())
        ]
        data_group = f5bigip.ltm.DataGroup(
            f"{name}-allow-list",
            name=names.data_group,
            type="string",
            internal=True,
            records=[
                f5bigip.ltm.DataGroupRecordArgs(name=ns, data=data)
                for ns, data in irules.data_group_records(egress.allow, names.app_snat_pool)
            ],
            # The pools its records name exist first, and are deleted after it stops naming them.
            opts=after_these(*app_snat_pools),
        )
        irule = f5bigip.ltm.IRule(
            f"{name}-irule",
            name=names.irule,
            irule=irules.egress_authz(unit.mesh.trust_domain, names.data_group, args.mesh_ca_subject),
            opts=after_these(data_group),
        )
        virtual_server = f5bigip.ltm.VirtualServer(
            f"{name}-virtual-server",
            name=names.virtual_server,
            destination=str(egress.vip),
            port=egress.port,
            ip_protocol="tcp",
            pool=pool.name,
            profiles=["/Common/tcp"],
            client_profiles=[profile.name],
            irules=[irule.name],
            source_address_translation="snat",
            snatpool=snat_pool.name,
            vlans=[f"/Common/{bigip.vlan}"],
            vlans_enabled=True,
            description=f"cpaas {unit.name}: mesh egress, SPIFFE-authorised, SNAT to forward proxy",
            opts=after_these(irule, data_group, profile, pool, member, snat_pool),
        )

        # Mesh side: the sidecars of allowed namespaces reach the VIP with ISTIO_MUTUAL.
        k8s.apiextensions.CustomResource(
            f"{name}-service-entry",
            api_version="networking.istio.io/v1",
            kind="ServiceEntry",
            metadata={"name": "bigip-egress", "namespace": mesh.NAMESPACE},
            spec=service_entry(unit, args.spiffe_id),
            opts=mesh_side,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-destination-rule",
            api_version="networking.istio.io/v1",
            kind="DestinationRule",
            metadata={"name": "bigip-egress", "namespace": mesh.NAMESPACE},
            spec=destination_rule(unit),
            opts=mesh_side,
        )
        self.host = egress_host(unit)
        self.objects: tuple[pulumi.CustomResource, ...] = (
            identity, ca, profile, pool, node, member, snat_pool, *app_snat_pools, data_group, irule,
            virtual_server,
        )  # fmt: skip
        self.register_outputs({"host": self.host, "virtualServer": names.virtual_server})
