"""What makes the Kubernetes side replace or re-run: the provider's cluster identity (a
replaced provider replaces every object on it) and the Calico readiness wait's trigger."""

from __future__ import annotations

import re
from typing import Any

import pulumi

from components import config
from components.calico import Calico, CalicoArgs
from components.cluster import Cluster, ClusterArgs
from tests.support import stack
from tools import engine

K8S_PROVIDER = "pulumi:providers:kubernetes"
RELEASE = "kubernetes:helm.sh/v3:Release"
AKS_STACK = "example-bank/aks-clusters/prod-mel"


def _kubeconfig(server: str, ca: str) -> str:
    return (
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: {server}, certificate-authority-data: {ca}}}}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
    )


def _provider(unit: config.Unit, kubeconfig: str | None = None, output: Any = None) -> engine.Registration:
    mocks = engine.StateMocks(stack_outputs={AKS_STACK: {"kubeconfig": output}})
    run = engine.run(lambda: {"kc": Cluster("c", ClusterArgs(unit, kubeconfig)).kubeconfig}, mocks=mocks)
    return run.get("c-k8s")


# ---------------------------------------------------------------------------------------------
# The provider's cluster identity (issue 10 item 5)
# ---------------------------------------------------------------------------------------------


def test_each_units_kubernetes_provider_carries_a_cluster_identifier_named_after_its_unit(
    prod: engine.Run, dev: engine.Run
) -> None:
    ids = {
        r.name: r.inputs.get("clusterIdentifier") for run in (prod, dev) for r in run.by_type(K8S_PROVIDER)
    }
    # A contract: changing one of these replaces that unit's provider and every object on it.
    assert {k: v for k, v in ids.items() if k != "dev-cluster-k8s"} == {
        "aws-syd-cluster-k8s": "cpaas-unit-aws-syd",
        "azure-mel-cluster-k8s": "cpaas-unit-azure-mel",
        "onprem-syd-cluster-k8s": "cpaas-unit-onprem-syd",
        "onprem-syd-b-cluster-k8s": "cpaas-unit-onprem-syd-b",
    }
    assert re.fullmatch(r"cpaas-unit-dev-k3d-[0-9a-f]{12}", ids["dev-cluster-k8s"] or ""), ids


def test_a_new_server_or_ca_in_the_kubeconfig_keeps_the_cluster_identifier() -> None:
    """An AKS CA rotation changes the cluster stack's kubeconfig output; the provider must be
    updated, not replaced, so the identifier must not follow the kubeconfig."""
    aks = stack("prod").unit("azure-mel")
    before = _provider(aks, output=_kubeconfig("https://aks-mel:443", "Q0Ex"))
    after = _provider(aks, output=_kubeconfig("https://aks-mel-new:443", "Q0Ey"))
    assert before.inputs["clusterIdentifier"] == after.inputs["clusterIdentifier"] == "cpaas-unit-azure-mel"
    eks = stack("prod").unit("aws-syd")
    one = _provider(eks, kubeconfig=_kubeconfig("https://eks-1:443", "Q0Ex"))
    two = _provider(eks, kubeconfig=_kubeconfig("https://eks-2:443", "Q0Ey"))
    assert one.inputs["clusterIdentifier"] == two.inputs["clusterIdentifier"] == "cpaas-unit-aws-syd"
    assert one.inputs["clusterIdentifier"] != engine.SECRET


def test_a_recreated_k3d_cluster_gets_a_new_identifier_so_every_object_is_created_in_it() -> None:
    """A changed k3d config deletes the cluster and makes an empty one: the provider must be
    replaced then (and only then), or Pulumi would believe the objects still exist."""
    dev = stack("dev").units[0]
    assert isinstance(dev.cluster, config.K3dCluster)
    same = _provider(dev).inputs["clusterIdentifier"]
    assert _provider(dev).inputs["clusterIdentifier"] == same
    more_agents = dev.model_copy(update={"cluster": dev.cluster.model_copy(update={"agents": 2})})
    assert _provider(more_agents).inputs["clusterIdentifier"] != same


# ---------------------------------------------------------------------------------------------
# The Calico readiness wait (issue 10 item 11)
# ---------------------------------------------------------------------------------------------


def _revision(revision: int) -> type[engine.StateMocks]:
    class AtRevision(engine.StateMocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
            id_, state = super().new_resource(args)
            if args.typ == RELEASE:
                state = {**state, "status": {**state.get("status", {}), "revision": revision}}
            return id_, state

    return AtRevision


def _wait_triggers(mocks: engine.StateMocks, unit: config.Unit | None = None) -> list[Any]:
    unit = unit or stack("prod").unit("onprem-syd")
    run = engine.run(lambda: {"c": Calico("c", CalicoArgs(unit, "kubeconfig")).urn}, mocks=mocks)
    triggers: list[Any] = run.get("c-api-ready").inputs["triggers"]
    return triggers


def test_the_calico_wait_runs_again_whenever_the_operator_release_gets_a_new_revision() -> None:
    """Every helm upgrade (new values, a new chart version, an upgrade seen by refresh) makes a
    new revision, and the API server restarts with it: the wait must run again."""
    first = _wait_triggers(_revision(1)())
    assert _wait_triggers(_revision(1)()) == first
    assert _wait_triggers(_revision(2)()) != first
    assert engine.SECRET not in first


def test_the_calico_wait_runs_again_when_the_operator_release_is_replaced() -> None:
    """A replaced release (new name or namespace) starts again at revision 1; its ID changes."""

    class Renamed(engine.StateMocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
            id_, state = super().new_resource(args)
            return ("tigera-operator/calico-2" if args.typ == RELEASE else id_), state

    assert _wait_triggers(Renamed()) != _wait_triggers(engine.StateMocks())
