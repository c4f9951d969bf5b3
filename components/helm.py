"""A pinned chart installed as a Helm release, the one way cpaas installs charts.

Every release is `atomic` (a chart that fails to install is purged, not left half-installed).
Options left unset are not sent: the provider's defaults apply.
Ref: pulumi/pulumi-kubernetes@v4.34.2 sdk/python/pulumi_kubernetes/helm/v3/Release.py (atomic)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import versions
from components.children import waiting


def release(
    name: str,
    chart: versions.Chart,
    *,
    release_name: str,
    namespace: str,
    values: pulumi.Input[dict[str, Any]],
    opts: pulumi.ResourceOptions,
    timeout: int | None = None,
    skip_crds: bool = False,
) -> k8s.helm.v3.Release:
    """The Pulumi resource `name` installing `chart` as the release `release_name` in `namespace`.
    A chart without a Helm repository is an oci:// reference (`versions.Chart.repo` is "")."""
    return k8s.helm.v3.Release(
        name,
        name=release_name,
        chart=chart.name,
        version=chart.version,
        repository_opts={"repo": chart.repo} if chart.repo else None,
        namespace=namespace,
        values=values,
        skip_crds=skip_crds or None,
        atomic=True,
        timeout=timeout,
        opts=opts,
    )


@dataclass(frozen=True)
class Home:
    """A component's own namespace: what it puts there is its child and waits for the namespace."""

    parent: pulumi.Resource
    name: str
    namespace: k8s.core.v1.Namespace

    def opts(self, *more: pulumi.Resource) -> pulumi.ResourceOptions:
        return waiting(self.parent, (self.namespace,))(*more)

    def release(
        self,
        name: str,
        chart: versions.Chart,
        release_name: str,
        values: pulumi.Input[dict[str, Any]],
        *,
        timeout: int | None = None,
        skip_crds: bool = False,
        after: Sequence[pulumi.Resource] = (),
    ) -> k8s.helm.v3.Release:
        """`chart` installed as `release_name` in this namespace, after it and `after`."""
        opts = self.opts(*after)
        return release(
            name,
            chart,
            release_name=release_name,
            namespace=self.name,
            values=values,
            opts=opts,
            timeout=timeout,
            skip_crds=skip_crds,
        )


def home(
    name: str,
    parent: pulumi.Resource,
    namespace: str,
    *,
    enforce: str,
    labels: Mapping[str, str] | None = None,
    after: Sequence[pulumi.Resource] = (),
) -> Home:
    """The namespace `namespace` (the resource `{name}-namespace`) enforcing the Pod Security
    level `enforce`, after `after`."""
    ns = k8s.core.v1.Namespace(
        f"{name}-namespace",
        metadata={
            "name": namespace,
            "labels": {"pod-security.kubernetes.io/enforce": enforce, **(labels or {})},
        },
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(after)),
    )
    return Home(parent, namespace, ns)
