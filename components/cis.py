"""F5 Container Ingress Services (k8s-bigip-ctlr 2.x) driving the unit's BIG-IP through AS3.

CIS owns one BIG-IP partition per unit and nothing else. Its login is a Secret made here (the
chart's own `bigip_secret` would put the password in Helm values, i.e. in the release record).
BIG-IP TLS is verified against a trusted-certs ConfigMap; skipping that is explicit, dev-only.
Ref: https://clouddocs.f5.com/containers/latest/userguide/kubernetes/#cis-installation
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components import config, helm, multicluster, versions

NAMESPACE = "f5-cis"
RELEASE = "f5-bigip-ctlr"
LOGIN_SECRET = "f5-bigip-ctlr-login"
TRUSTED_CERTS = "bigip-trusted-certs"
# The chart ships CRDs that may predate the controller; apply the matching release's file.
# Ref: https://github.com/F5Networks/k8s-bigip-ctlr/tree/v2.20.4/docs/config_examples/customResourceDefinitions
CRDS_URL = (
    f"https://raw.githubusercontent.com/F5Networks/k8s-bigip-ctlr/{versions.CIS_COMMIT}/"
    "docs/config_examples/customResourceDefinitions/customresourcedefinitions.yml"
)
# The chart takes the image as user/repo.
IMAGE_USER, IMAGE_REPO = versions.CIS_IMAGE.split("/")


def bigip_url(bigip: config.Bigip) -> str:
    return f"https://{bigip.management_address}:{bigip.management_port}"


def values(bigip: config.Bigip, multi_cluster: dict[str, Any] | None = None) -> dict[str, Any]:
    """Chart values for the unit's controller; `multi_cluster`: multicluster.cis_args. Pure: test it
    directly."""
    args: dict[str, Any] = {
        "bigip_url": bigip_url(bigip),
        "bigip_partition": bigip.cis_partition,
        # Pool members are pod IPs: BGP (Calico) or the cloud's VPC CNI makes them routable.
        "pool_member_type": "cluster",
        "custom_resource_mode": True,
        "log_level": "INFO",
        "as3_validation": True,
        "disable_teems": True,
        "insecure": bigip.insecure_skip_verify,
    }
    if not bigip.insecure_skip_verify:
        args["trusted_certs_cfgmap"] = f"{NAMESPACE}/{TRUSTED_CERTS}"
    args.update(multi_cluster or {})
    return {
        # The chart puts every object in .Values.namespace, not the release namespace.
        "namespace": NAMESPACE,
        "bigip_login_secret": LOGIN_SECRET,
        "bigip_secret": {"create": False},
        "rbac": {"create": True},
        "serviceAccount": {"create": True, "name": "f5-bigip-ctlr"},
        # CRD mode only; the chart's default IngressClass would compete with NGINX's.
        "ingressClass": {"create": False},
        "args": args,
        "image": {"user": IMAGE_USER, "repo": IMAGE_REPO, "pullPolicy": "IfNotPresent"},
        # The image tag; the chart's default is "latest".
        "version": bigip.cis_version,
        # The chart copies this to the container securityContext; the namespace enforces the
        # "restricted" Pod Security Standard.
        "podSecurityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "limits_cpu": "500m",
        "limits_memory": "512Mi",
        "requests_cpu": "100m",
        "requests_memory": "256Mi",
    }


@dataclass(frozen=True)
class CisArgs:
    bigip: config.Bigip
    password: pulumi.Input[str]
    # PEM of the BIG-IP management certificate (None only with insecureSkipVerify).
    trusted_cert: pulumi.Input[str] | None
    # Children wait for these: a component's depends_on does not reach its children.
    after: tuple[pulumi.Resource, ...] = ()
    # Multi-cluster (multicluster.py): the unit, and each peer unit's kubeconfig (secret).
    unit: config.Unit | None = None
    peer_kubeconfigs: tuple[tuple[str, pulumi.Input[str]], ...] = ()


class Cis(pulumi.ComponentResource):
    crds: pulumi.Resource

    def __init__(self, name: str, args: CisArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:cis:Cis", name, None, opts)
        bigip = args.bigip
        if not bigip.insecure_skip_verify and args.trusted_cert is None:
            raise ValueError("CIS verifies BIG-IP TLS: a trusted certificate is required")
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        home = helm.home(name, self, NAMESPACE, enforce="restricted", after=args.after)
        after_ns = home.opts()
        login = k8s.core.v1.Secret(
            f"{name}-login",
            metadata={"name": LOGIN_SECRET, "namespace": NAMESPACE},
            type="Opaque",
            string_data={
                "username": bigip.username,
                "password": pulumi.Output.secret(args.password),
            },
            opts=after_ns,
        )
        needs: list[pulumi.Resource] = [login]
        if args.trusted_cert is not None and not bigip.insecure_skip_verify:
            needs.append(
                k8s.core.v1.ConfigMap(
                    f"{name}-trusted-certs",
                    metadata={"name": TRUSTED_CERTS, "namespace": NAMESPACE},
                    data={"bigip.pem": args.trusted_cert},
                    opts=after_ns,
                )
            )
        needs += self._multi_cluster(name, args, after_ns)
        self.crds = k8s.yaml.v2.ConfigFile(f"{name}-crds", file=CRDS_URL, opts=child)
        multi = multicluster.cis_args(args.unit, NAMESPACE) if args.unit else {}
        self.release = home.release(
            f"{name}-release",
            versions.CIS,
            RELEASE,
            values(bigip, multi),
            skip_crds=True,
            timeout=600,
            after=[self.crds, *needs],
        )
        self.register_outputs({"partition": bigip.cis_partition})

    def _multi_cluster(self, name: str, args: CisArgs, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        """The peers' kubeconfig Secrets and the extended ConfigMap, which CIS reads at start."""
        if args.unit is None or not multicluster.peers(args.unit):
            return []
        kubeconfigs = dict(args.peer_kubeconfigs)
        made: list[pulumi.Resource] = []
        for peer in multicluster.peers(args.unit):
            made.append(
                k8s.core.v1.Secret(
                    f"{name}-kubeconfig-{peer}",
                    metadata={"name": multicluster.kubeconfig_secret(peer), "namespace": NAMESPACE},
                    type="Opaque",
                    string_data={"kubeconfig": pulumi.Output.secret(kubeconfigs[peer])},
                    opts=opts,
                )
            )
        spec = multicluster.extended_spec(args.unit, NAMESPACE)
        made.append(
            k8s.core.v1.ConfigMap(
                f"{name}-extended-spec",
                metadata={
                    "name": multicluster.EXTENDED_SPEC,
                    "namespace": NAMESPACE,
                    "labels": multicluster.EXTENDED_SPEC_LABELS,
                },
                data={"extendedSpec": yaml.safe_dump(spec, sort_keys=False)},
                opts=opts,
            )
        )
        return made
