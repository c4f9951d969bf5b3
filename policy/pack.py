"""The rules as Pulumi policies (no PolicyPack here: constructing one starts the policy server)."""

from __future__ import annotations

from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

try:  # as a package in the repo (tests, tools.render --policy)
    from policy import rules
except ImportError:  # as the pack's root folder, where the Pulumi CLI runs it
    import rules  # type: ignore[no-redef]


def _resource(args: Any) -> rules.Resource:
    provider = getattr(args, "provider", None)
    return rules.Resource(
        type=args.resource_type,
        name=args.name,
        urn=args.urn,
        props=args.props,
        provider=str(getattr(provider, "urn", "") or "") if provider else "",
    )


def resource_policy(name: str, fn: Any) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        for message in fn(_resource(args)):
            report(message, None)

    return ResourceValidationPolicy(name, (fn.__doc__ or name).strip(), validate, EnforcementLevel.MANDATORY)


def stack_policy(name: str, fn: Any) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        for urn, message in fn([_resource(r) for r in args.resources]):
            report(message, urn)

    return StackValidationPolicy(name, (fn.__doc__ or name).strip(), validate, EnforcementLevel.MANDATORY)


def policies() -> list[Policy]:
    return [
        *(resource_policy(n, f) for n, f in rules.RESOURCE_RULES.items()),
        *(stack_policy(n, f) for n, f in rules.STACK_RULES.items()),
    ]
