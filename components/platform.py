"""build(stack): the one place that turns a validated stack into resources.

`__main__.py` (real engine) and `tools/render.py` (mock engine) both call `build`; only where
the deploy-time values come from differs (pulumi.Config there, placeholders here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from components import config
from components.pki import Pki, PkiArgs, UnitTrust
from components.unit import AtomicUnit, UnitArgs


@dataclass(frozen=True)
class DeployInputs:
    """Deploy-time values named by the config: secrets (passwords, kubeconfigs, keys) and
    plain values (certificates). Keys are the bare config keys, e.g. `bigipPassword-aws-syd`."""

    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    values: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)

    def secret(self, key: str) -> pulumi.Output[str]:
        if key not in self.secrets:
            raise KeyError(f"secret config key {config.CONFIG_NAMESPACE}:{key} was not provided")
        return pulumi.Output.secret(self.secrets[key])

    def value(self, key: str) -> pulumi.Input[str]:
        if key not in self.values:
            raise KeyError(f"config key {config.CONFIG_NAMESPACE}:{key} was not provided")
        return self.values[key]


def _unit_args(stack: config.StackConfig, unit: config.Unit, pki: Pki, inputs: DeployInputs) -> UnitArgs:
    cluster, bigip = unit.cluster, unit.bigip
    return UnitArgs(
        environment=stack.environment,
        unit=unit,
        ca=pki.intermediates[unit.name],
        kubeconfig=(
            inputs.secret(cluster.kubeconfig_secret)
            if isinstance(cluster, config.KubeconfigCluster)
            else None
        ),
        bigip_password=inputs.secret(bigip.password_secret) if bigip else None,
        bigip_trusted_cert=(
            inputs.value(bigip.trusted_cert_key) if bigip and bigip.trusted_cert_key else None
        ),
    )


def build(stack: config.StackConfig, inputs: DeployInputs) -> dict[str, Any]:
    """Create the PKI and every unit; return the stack outputs."""
    imported = stack.pki.root if isinstance(stack.pki.root, config.ImportedRoot) else None
    pki = Pki(
        "pki",
        PkiArgs(
            pki=stack.pki,
            units=tuple(UnitTrust(u.name, u.mesh.trust_domain) for u in stack.units),
            imported_root_cert=inputs.value(imported.cert_key) if imported else None,
            imported_root_key=inputs.secret(imported.private_key_secret) if imported else None,
        ),
    )
    units: dict[str, AtomicUnit] = {}
    for unit in stack.units:
        units[unit.name] = AtomicUnit(unit.name, _unit_args(stack, unit, pki, inputs))
    return {
        "environment": stack.environment,
        "rootCertPem": pki.root_cert_pem,
        "units": {name: u.summary for name, u in units.items()},
        "kubeconfigs": pulumi.Output.secret({name: u.kubeconfig for name, u in units.items()}),
    }
