"""The unit's Kubernetes cluster and its own `kubernetes.Provider` (never the ambient kubeconfig).

Three sources: a local k3d cluster made with pulumi-command (dev), an existing cluster whose
kubeconfig is a secret config value, or one whose kubeconfig is another stack's output.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s
import yaml

from components import config


def k3d_cluster_name(unit: str) -> str:
    return f"cpaas-{unit}"


def k3d_config(unit: config.Unit) -> dict[str, Any]:
    """The k3d Simple config for a unit: flannel, traefik, servicelb and k3s's network policy
    off (Calico is the CNI and enforces policy); the unit's pod/service CIDRs passed to k3s.

    Ref: https://k3d.io/stable/usage/configfile/
    Ref: https://docs.tigera.io/calico/latest/getting-started/kubernetes/k3s/multi-node-install
    """
    cluster = unit.cluster
    if not isinstance(cluster, config.K3dCluster):
        raise ValueError(
            f"unit {unit.name}: cluster.source is {cluster.source}, not k3d, so there is no k3d "
            "config; use it only where unit.is_local"
        )
    servers = ["server:*"]
    k3s_args = [
        "--flannel-backend=none",
        "--disable-network-policy",
        "--disable=traefik",
        "--disable=servicelb",
        f"--cluster-cidr={unit.network.pod_cidr}",
        f"--service-cidr={unit.network.service_cidr}",
        *(f"--tls-san={san}" for san in cluster.tls_sans),
    ]
    doc: dict[str, Any] = {
        "apiVersion": "k3d.io/v1alpha5",
        "kind": "Simple",
        "metadata": {"name": k3d_cluster_name(unit.name)},
        "servers": cluster.servers,
        "agents": cluster.agents,
        "image": cluster.image,
        "kubeAPI": {"hostIP": "127.0.0.1", "hostPort": str(cluster.api_port)},
        "options": {
            "k3s": {"extraArgs": [{"arg": a, "nodeFilters": servers} for a in k3s_args]},
            "kubeconfig": {"updateDefaultKubeconfig": False, "switchCurrentContext": False},
        },
    }
    # k3d treats any `network` as an existing one and refuses a subnet with it: either join the
    # named network as it is, or let k3d make its own (k3d-<name>, removed with the cluster)
    # on the unit's node CIDR. Ref: https://github.com/k3d-io/k3d/blob/v5.9.0/pkg/client/cluster.go
    if cluster.docker_network:
        doc["network"] = cluster.docker_network
    else:
        doc["subnet"] = str(unit.network.node_cidr)
    return doc


_REQUIRE = (
    'for tool in docker k3d; do command -v "$tool" >/dev/null 2>&1 || '
    '{ echo "cpaas: $tool is not installed; see README.md (make up) for what to install" >&2; '
    "exit 127; }; done; "
)


def k3d_create_script() -> str:
    # Adopt a cluster left by an interrupted run instead of failing on "already exists".
    return (
        _REQUIRE + "cfg=$(mktemp) && trap 'rm -f \"$cfg\"' EXIT && "
        'printf "%s" "$CPAAS_K3D_CONFIG" > "$cfg" && '
        '(k3d cluster get "$CPAAS_K3D_NAME" >/dev/null 2>&1 || '
        'k3d cluster create --config "$cfg" --wait --timeout 300s)'
    )


def k3d_delete_script() -> str:
    return _REQUIRE + 'k3d cluster delete "$CPAAS_K3D_NAME"'


def k3d_config_text(unit: config.Unit) -> str:
    """The k3d config as the create command receives it; a change recreates the cluster."""
    return yaml.safe_dump(k3d_config(unit), sort_keys=False)


def cluster_identifier(unit: config.Unit) -> str:
    """The provider's `clusterIdentifier`: pulumi-kubernetes then replaces the provider (and with
    it every object on it) only when this changes, not when the kubeconfig's server or CA does.
    It names the unit and never changes for an existing one, except for k3d, where a config
    change deletes the cluster and creates an empty one, so the objects must be created again.
    Ref: https://github.com/pulumi/pulumi-kubernetes/blob/v4.32.0/provider/pkg/provider/provider.go
    (DiffConfig).
    """
    ident = f"cpaas-unit-{unit.name}"
    if isinstance(unit.cluster, config.K3dCluster):
        ident += "-k3d-" + hashlib.sha256(k3d_config_text(unit).encode()).hexdigest()[:12]
    return ident


@dataclass(frozen=True)
class ClusterArgs:
    unit: config.Unit
    # kubeconfig for the kubeconfig source (a secret config value); unused otherwise.
    kubeconfig: pulumi.Input[str] | None = None


class Cluster(pulumi.ComponentResource):
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    kubernetes_version: str
    context: str | None
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:cluster:Cluster", name, None, opts)
        unit = args.unit
        source = unit.cluster
        self.kubernetes_version = source.kubernetes_version
        self.context = source.context if isinstance(source, config.KubeconfigCluster) else None
        self.ready = []
        child = pulumi.ResourceOptions(parent=self)

        if isinstance(source, config.K3dCluster):
            env = {
                "CPAAS_K3D_NAME": k3d_cluster_name(unit.name),
                "CPAAS_K3D_CONFIG": k3d_config_text(unit),
            }
            create = command.local.Command(
                f"{name}-k3d",
                create=k3d_create_script(),
                delete=k3d_delete_script(),
                environment=env,
                interpreter=["/bin/bash", "-c"],
                triggers=[env["CPAAS_K3D_CONFIG"]],
                # A changed config must remove the old cluster before creating the new one (the
                # create script adopts an existing cluster, and a later delete would remove it).
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
            )
            read = command.local.Command(
                f"{name}-kubeconfig",
                create='k3d kubeconfig get "$CPAAS_K3D_NAME"',
                environment={"CPAAS_K3D_NAME": env["CPAAS_K3D_NAME"]},
                interpreter=["/bin/bash", "-c"],
                triggers=[create.id],
                logging=command.local.Logging.STDERR,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[create], additional_secret_outputs=["stdout"]
                ),
            )
            self.kubeconfig = pulumi.Output.secret(read.stdout)
            self.ready = [read]
        elif isinstance(source, config.KubeconfigCluster):
            if args.kubeconfig is None:
                raise ValueError(f"unit {unit.name}: the kubeconfig source needs a kubeconfig input")
            self.kubeconfig = pulumi.Output.secret(args.kubeconfig)
        else:
            ref = pulumi.StackReference(f"{name}-stackref", stack_name=source.stack, opts=child)
            # Cluster stacks may export the kubeconfig as an object (pulumi-eks does): as JSON it
            # is a valid kubeconfig; str() of a dict would not be.
            self.kubeconfig = pulumi.Output.secret(ref.require_output(source.output)).apply(
                lambda v: v if isinstance(v, str) else json.dumps(v)
            )

        provider_args: dict[str, Any] = {}
        if isinstance(source, config.KubeconfigCluster) and source.context:
            provider_args["context"] = source.context
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            cluster_identifier=cluster_identifier(unit),
            # Server-side apply lets the operators (tigera, istiod) co-own fields safely.
            enable_server_side_apply=True,
            # A rotated PEM updates its Secret (cacerts, the apps' TLS Secrets) in place: replacing
            # one deletes it first (a fixed name), and istiod, CIS and the gateways would see none.
            # ConfigMaps stay replaced: none holds rotated PKI material, and CIS reads its trusted
            # BIG-IP certificate only when it starts. Ref: pulumi/pulumi-kubernetes v4.32.0
            # provider/pkg/provider/diff.go (forceNewProperties); F5Networks/k8s-bigip-ctlr v2.20.2
            # cmd/k8s-bigip-ctlr/main.go (getBIGIPTrustedCerts).
            enable_secret_mutable=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.ready),
            **provider_args,
        )
        self.register_outputs({"kubeconfig": self.kubeconfig})
