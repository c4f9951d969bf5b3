"""Namespaces of the unit's non-mesh apps (mesh namespaces are made by Mesh, with injection on)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import config


def app_namespaces(unit: config.Unit, served: tuple[config.App, ...] = ()) -> list[str]:
    """Every namespace an app or NGINX uses that is not a mesh namespace, sorted; `served`: other
    units' multi-cluster apps this unit's cluster also serves (multicluster.py)."""
    injected = set(unit.mesh.injected_namespaces)
    wanted = {a.namespace for a in (*unit.apps, *served)} | set(
        unit.nginx.namespaces if unit.nginx.enabled else ()
    )
    return sorted(wanted - injected)


@dataclass(frozen=True)
class NamespacesArgs:
    unit: config.Unit
    after: tuple[pulumi.Resource, ...] = ()
    served: tuple[config.App, ...] = ()


class AppNamespaces(pulumi.ComponentResource):
    namespaces: dict[str, k8s.core.v1.Namespace]

    def __init__(self, name: str, args: NamespacesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:namespaces:AppNamespaces", name, None, opts)
        self.namespaces = {
            ns: k8s.core.v1.Namespace(
                f"{name}-{ns}",
                # Explicitly outside the mesh: these apps are reached through NGINX or L4.
                metadata={"name": ns, "labels": {"istio-injection": "disabled"}},
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
            )
            for ns in app_namespaces(args.unit, args.served)
        }
        self.register_outputs({"namespaces": sorted(self.namespaces)})
