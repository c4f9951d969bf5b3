"""Options for a component's children: parented to it and waiting for what it was told to wait
for (a component's depends_on does not reach its children)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pulumi


def waiting(
    parent: pulumi.Resource, after: Sequence[pulumi.Resource]
) -> Callable[..., pulumi.ResourceOptions]:
    """`opts(*deps)`: a child of `parent` that waits for `after` and for `deps`."""

    def opts(*deps: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=parent, depends_on=[*after, *deps])

    return opts
