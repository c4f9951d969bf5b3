"""build(stack): the one place that turns a validated stack into resources.

`__main__.py` (real engine) and `tools/render.py` (mock engine) both call `build`; only where
the deploy-time values come from differs (pulumi.Config there, placeholders here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from components import config, multicluster
from components.bigip.shared import SharedDevice, SharedDeviceArgs
from components.gslb import Gslb, GslbArgs, UnitRef, remote_ref, tenants
from components.pki import Pki, PkiArgs, UnitTrust, app_role, egress_role
from components.unit import AtomicUnit, UnitArgs


@dataclass(frozen=True)
class DeployInputs:
    """Deploy-time values named by the config: secrets (passwords, kubeconfigs, keys) and
    plain values (certificates). Keys are the bare config keys, e.g. `bigipPassword-aws-syd`."""

    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    values: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # The committed files the config names (trustedCertFile), by their path relative to the
    # project, with their content (read_trust_files).
    files: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)

    def secret(self, key: str) -> pulumi.Output[str]:
        if key not in self.secrets:
            raise KeyError(f"secret config key {config.CONFIG_NAMESPACE}:{key} was not provided")
        return pulumi.Output.secret(self.secrets[key])

    def value(self, key: str) -> pulumi.Input[str]:
        if key not in self.values:
            raise KeyError(f"config key {config.CONFIG_NAMESPACE}:{key} was not provided")
        return self.values[key]

    def file(self, path: str) -> pulumi.Input[str]:
        if path not in self.files:
            raise KeyError(f"the content of {path} was not provided")
        return self.files[path]


def read_trust_files(stack: config.StackConfig, root: Path) -> dict[str, str]:
    """The content of every certificate file the stack names, read from the project at `root`.
    Raises ConfigError with one line per file that is missing or holds no PEM certificate."""
    files: dict[str, str] = {}
    problems: list[str] = []
    for path, where in stack.trust_files().items():
        what = (
            "CA certificate of the token issuers"
            if where.endswith("trustedCaFile")
            else "BIG-IP's management certificate"
        )
        try:
            text = (root / path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            problems.append(
                f"{config.CONFIG_NAMESPACE}:{where}: {path} cannot be read ({reason}); commit the "
                f"{what} (PEM) at that path in the project"
            )
            continue
        if "-----BEGIN CERTIFICATE-----" not in text:
            problems.append(
                f"{config.CONFIG_NAMESPACE}:{where}: {path} holds no PEM certificate; put the "
                f"{what} there (-----BEGIN CERTIFICATE-----)"
            )
            continue
        files[path] = text
    if problems:
        raise config.ConfigError(problems)
    return files


def _unit_trust(unit: config.Unit) -> UnitTrust:
    # Leaves are for what a BIG-IP presents: the egress identity and the HTTP apps' FQDNs.
    has_bigip = unit.bigip is not None
    return UnitTrust(
        unit.name,
        unit.mesh.trust_domain,
        egress=has_bigip and unit.egress is not None,
        apps=tuple((a.name, a.fqdn) for a in unit.apps if has_bigip and a.kind.startswith("http") and a.fqdn),
    )


def _trusted_file(access: config.BigipAccess | None) -> str | None:
    return None if access is None or access.insecure_skip_verify else access.trusted_cert_file


def _shared_devices(stack: config.StackConfig, inputs: DeployInputs) -> dict[str, SharedDevice]:
    """One component per shared BIG-IP, made before its units (they use its provider)."""
    return {
        d.name: SharedDevice(
            d.name,
            SharedDeviceArgs(d, stack.units_on(d.name), inputs.secret(d.password_secret), _trusted_file(d)),
        )
        for d in stack.bigip_devices  # config rules refuse a device no unit names
    }


def _unit_args(
    stack: config.StackConfig,
    unit: config.Unit,
    pki: Pki,
    inputs: DeployInputs,
    devices: Mapping[str, SharedDevice],
) -> UnitArgs:
    cluster, bigip = unit.cluster, unit.bigip
    trusted = _trusted_file(bigip)
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
        bigip_trusted_cert=inputs.file(trusted) if trusted else None,
        # The provider reads the committed file itself, by this path relative to the project.
        bigip_trusted_cert_path=trusted,
        jwks_ca=inputs.file(unit.mesh.jwks.trusted_ca_file) if unit.mesh.jwks.trusted_ca_file else None,
        egress_identity=pki.leaves.get(egress_role(unit.name)),
        app_certs={
            app.name: pki.leaves[app_role(unit.name, app.name)]
            for app in unit.apps
            if app_role(unit.name, app.name) in pki.leaves
        },
        shared_device=devices.get(bigip.device) if bigip and bigip.device else None,
        peer_kubeconfigs=tuple(
            (peer, peer_kubeconfig(stack, peer, inputs)) for peer in multicluster.peers(unit)
        ),
        served=multicluster.served_by(stack, unit),
    )


def peer_kubeconfig(stack: config.StackConfig, unit: str, inputs: DeployInputs) -> pulumi.Input[str]:
    """What another unit's CIS reads `unit`'s cluster with: the read-only kubeconfig its config names
    (cluster.cisKubeconfigSecret; config rules require it of every peer), never the deployer's, whose
    admin rights would sit in a Secret of the other cluster and whose exec plugins (aws, kubelogin)
    CIS's container cannot run. Ref: F5Networks/k8s-bigip-ctlr v2.20.4 docs/config_examples/multicluster."""
    cluster = stack.unit(unit).cluster
    if not isinstance(cluster, config.KubeconfigCluster) or cluster.cis_kubeconfig_secret is None:
        raise ValueError(f"unit {unit}: a multi-cluster peer needs cluster.cisKubeconfigSecret")
    return inputs.secret(cluster.cis_kubeconfig_secret)


def _pki(stack: config.StackConfig, pki_config: config.Pki, inputs: DeployInputs) -> Pki:
    imported = pki_config.root if isinstance(pki_config.root, config.ImportedRoot) else None
    return Pki(
        "pki",
        PkiArgs(
            pki=pki_config,
            units=tuple(_unit_trust(u) for u in stack.units),
            imported_root_cert=inputs.value(imported.cert_key) if imported else None,
            imported_root_key=inputs.secret(imported.private_key_secret) if imported else None,
        ),
    )


def build(stack: config.StackConfig, inputs: DeployInputs) -> dict[str, Any]:
    """Create the PKI and every unit, then GSLB over them; return the stack outputs."""
    outputs: dict[str, Any] = {"environment": stack.environment}
    units: dict[str, AtomicUnit] = {}
    if stack.units and stack.pki is not None:  # config validation guarantees pki with units
        pki = _pki(stack, stack.pki, inputs)
        devices = _shared_devices(stack, inputs)
        for unit in stack.units:
            units[unit.name] = AtomicUnit(unit.name, _unit_args(stack, unit, pki, inputs, devices))
        for device in devices.values():
            device.finish()
        outputs["rootCertPem"] = pki.root_cert_pem
        outputs["units"] = {name: u.summary for name, u in units.items()}
        outputs["kubeconfigs"] = pulumi.Output.secret({name: u.kubeconfig for name, u in units.items()})
        # Every unit stack says what GSLB needs of its units; a GSLB stack reads it back.
        outputs["gslbRefs"] = {n: u.gslb_ref.as_output() for n, u in units.items() if u.gslb_ref is not None}
    if stack.gslb is not None:
        outputs["gslb"] = _gslb(stack.gslb, units, inputs)
    return outputs


def _gslb(gslb: config.Gslb, units: Mapping[str, AtomicUnit], inputs: DeployInputs) -> dict[str, Any]:
    """F5 DNS over this stack's units and the units of `gslb.unitStacks` (one stack per unit)."""
    refs: list[pulumi.Input[UnitRef]] = [u.gslb_ref for u in units.values() if u.gslb_ref is not None]
    for unit, stack_name in gslb.unit_stacks.items():
        ref = pulumi.StackReference(f"gslb-{unit}-stackref", stack_name=stack_name)
        refs.append(remote_ref(ref, unit, stack_name))
    device = gslb.dns_device
    component = Gslb(
        "gslb",
        GslbArgs(
            gslb=gslb,
            refs=refs,
            password=inputs.secret(device.password_secret),
            trusted_cert_path=_trusted_file(device),
        ),
    )
    return {
        "dnsDevice": str(device.management_address),
        "tenants": list(tenants(gslb)),
        "wideIps": component.wide_ips,
    }
