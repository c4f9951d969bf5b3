"""The pack the Pulumi CLI runs: `pulumi preview --policy-pack policy` (see README)."""

import pack  # type: ignore[import-not-found,unused-ignore]  # the CLI runs the pack with policy/ as its root
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name="cpaas-bank", enforcement_level=EnforcementLevel.MANDATORY, policies=pack.policies())
