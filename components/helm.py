"""A pinned chart installed as a Helm release, the one way cpaas installs charts.

Every release is `atomic` (a chart that fails to install is purged, not left half-installed).
Options left unset are not sent: the provider's defaults apply.
Ref: pulumi/pulumi-kubernetes@v4.34.2 sdk/python/pulumi_kubernetes/helm/v3/Release.py (atomic)
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import versions


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
