"""Org PKI with pulumi-tls: org root -> one intermediate CA per unit (Istio's `cacerts`).

`plan()` is the pure description of every certificate (tests rebuild the chain from it with
`cryptography`); `Pki` turns the plan into tls resources. Private keys are secrets end to end.
Ref: https://istio.io/latest/docs/tasks/security/cert-management/plugin-ca-cert/
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_tls as tls

from components import config

CA_USES = ("cert_signing", "crl_signing", "digital_signature")


@dataclass(frozen=True)
class CertSpec:
    """One certificate of the plan; `issuer` is the role of the signing CA ("" = self-signed)."""

    role: str
    common_name: str
    organization: str
    organizational_unit: str
    is_ca: bool
    max_path_length: int | None
    allowed_uses: tuple[str, ...]
    validity_hours: int
    issuer: str = ""
    uris: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    # The provider replaces the certificate (same key, same subject) on the first update inside
    # the last `early_renewal_hours` of its life: see renewal_hours().
    early_renewal_hours: int = 0

    @property
    def subject_rdns(self) -> tuple[str, ...]:
        """The subject as "attribute=value" strings, in the order the provider encodes them
        (Go's pkix.Name: O, OU, CN; empty ones left out). Certificates this CA signs carry it
        as their issuer, which the egress iRule checks."""
        fields = (("O", self.organization), ("OU", self.organizational_unit), ("CN", self.common_name))
        return tuple(f"{attr}={value}" for attr, value in fields if value)


@dataclass(frozen=True)
class UnitTrust:
    """What one unit needs from the PKI: its CA, and the leaves its BIG-IP presents."""

    unit: str
    trust_domain: str
    egress: bool = False
    apps: tuple[tuple[str, str], ...] = ()  # (app name, FQDN) of the unit's HTTP apps


@dataclass(frozen=True)
class KeyArgs:
    """pulumi-tls PrivateKey arguments; the curve is always explicit (the provider defaults to P224)."""

    algorithm: str
    ecdsa_curve: str | None = None
    rsa_bits: int | None = None


def key_args(algorithm: config.KeyAlgorithm) -> KeyArgs:
    family, size = algorithm.split("-")
    if family == "ECDSA":
        return KeyArgs("ECDSA", ecdsa_curve=size)
    return KeyArgs("RSA", rsa_bits=int(size))


def _private_key(name: str, key: KeyArgs, opts: pulumi.ResourceOptions) -> tls.PrivateKey:
    return tls.PrivateKey(
        name, algorithm=key.algorithm, ecdsa_curve=key.ecdsa_curve, rsa_bits=key.rsa_bits, opts=opts
    )


def renewal_hours(validity_hours: int) -> int:
    """Renew when a third of the life remains: prod's 90-day leaves 30 days before they expire,
    its 2-year intermediates 243 days before. The old copy stays valid through that third, and
    the new one has the same key and subject, so both sides trust either copy meanwhile. Never
    the whole life: terraform-provider-tls would then renew on every update.
    Ref: hashicorp/terraform-provider-tls internal/provider/common_cert.go
    (modifyPlanIfCertificateReadyForRenewal), attribute_plan_modifier_bool/default_value.go
    """
    return config.renewal_window_hours(validity_hours)


def root_role() -> str:
    return "root"


def intermediate_role(unit: str) -> str:
    return f"{unit}-intermediate"


def plan(pki: config.Pki, units: Sequence[UnitTrust]) -> list[CertSpec]:
    """Every certificate the PKI issues, root first. Pure: same models, same plan."""
    specs: list[CertSpec] = []
    if isinstance(pki.root, config.GeneratedRoot):
        root = pki.root
        specs.append(_ca(pki, root_role(), root.common_name, "cpaas", root.validity_days, path_length=1))
    for unit in units:
        # X.509 caps CN at 64; the organization is in O already.
        common_name = f"{unit.unit} mesh intermediate CA"
        intermediate = _ca(
            pki,
            intermediate_role(unit.unit),
            common_name,
            unit.unit,
            pki.intermediate_validity_days,
            # Istio signs workload leaves directly; nothing may sit below this CA.
            path_length=0,
            issuer=root_role(),
            # X509-SVID: a signing certificate may carry its trust domain's SPIFFE ID.
            # Ref: https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md
            uris=(f"spiffe://{unit.trust_domain}",),
        )
        specs += [intermediate, *_leaves(pki, unit)]
    return specs


def _ca(
    pki: config.Pki,
    role: str,
    common_name: str,
    unit: str,
    days: int,
    *,
    path_length: int,
    issuer: str = "",
    uris: tuple[str, ...] = (),
) -> CertSpec:
    return _org_cert(
        pki, role, common_name, unit, days, uses=CA_USES, path_length=path_length, issuer=issuer, uris=uris
    )


def _org_cert(
    pki: config.Pki,
    role: str,
    common_name: str,
    unit: str,
    days: int,
    *,
    uses: tuple[str, ...],
    path_length: int | None,
    issuer: str,
    uris: tuple[str, ...] = (),
    dns_names: tuple[str, ...] = (),
) -> CertSpec:
    """A certificate of the org (its O), for `days`, renewed when a third of that remains; a CA
    when it has a path length."""
    hours = days * 24
    return CertSpec(
        role=role,
        common_name=common_name,
        organization=pki.organization,
        organizational_unit=unit,
        is_ca=path_length is not None,
        max_path_length=path_length,
        allowed_uses=uses,
        validity_hours=hours,
        early_renewal_hours=renewal_hours(hours),
        issuer=issuer,
        uris=uris,
        dns_names=dns_names,
    )


def egress_role(unit: str) -> str:
    return f"{unit}-bigip-egress"


def app_role(unit: str, app: str) -> str:
    return f"{unit}-app-{app}"


def egress_spiffe_id(trust_domain: str) -> str:
    """The BIG-IP egress gateway's identity: the SAN mesh sidecars verify (secure naming)."""
    return f"spiffe://{trust_domain}/ns/{EGRESS_NAMESPACE}/sa/{EGRESS_SERVICE_ACCOUNT}"


EGRESS_NAMESPACE = "f5-bigip"
EGRESS_SERVICE_ACCOUNT = "egress-gateway"
LEAF_USES = ("digital_signature", "key_encipherment")


def _leaves(pki: config.Pki, unit: UnitTrust) -> list[CertSpec]:
    leaves: list[CertSpec] = []
    if unit.egress:
        name = f"{unit.unit} BIG-IP egress gateway"
        # Server to the mesh sidecars; client when it re-originates mTLS.
        uris = (egress_spiffe_id(unit.trust_domain),)
        leaves.append(_leaf(pki, unit, egress_role(unit.unit), name, "server_auth", "client_auth", uris=uris))
    for app, fqdn in unit.apps:
        leaves.append(_leaf(pki, unit, app_role(unit.unit, app), fqdn, "server_auth", dns_names=(fqdn,)))
    return leaves


def _leaf(
    pki: config.Pki,
    unit: UnitTrust,
    role: str,
    common_name: str,
    *uses: str,
    uris: tuple[str, ...] = (),
    dns_names: tuple[str, ...] = (),
) -> CertSpec:
    """A leaf the unit's intermediate issues."""
    return _org_cert(
        pki,
        role,
        common_name,
        unit.unit,
        pki.leaf_validity_days,
        uses=(*LEAF_USES, *uses),
        path_length=None,
        issuer=intermediate_role(unit.unit),
        uris=uris,
        dns_names=dns_names,
    )


@dataclass
class IssuedCa:
    """A CA the program holds: its certificate, its (secret) key and the chain up to the root."""

    cert_pem: pulumi.Output[str]
    key_pem: pulumi.Output[str]
    chain_pem: pulumi.Output[str]  # this CA's cert followed by the root (Istio cert-chain.pem)
    root_pem: pulumi.Output[str]
    subject_rdns: tuple[str, ...]  # known before deployment: CertSpec.subject_rdns


def cacerts_digest(ca: IssuedCa) -> pulumi.Output[str]:
    """sha256 of the CA's certificate and the root (cacerts' public files; never the key)."""
    return pulumi.Output.all(ca.cert_pem, ca.root_pem).apply(
        lambda pems: hashlib.sha256("".join(pems).encode()).hexdigest()
    )


@dataclass
class IssuedLeaf:
    cert_pem: pulumi.Output[str]
    key_pem: pulumi.Output[str]  # secret
    chain_pem: pulumi.Output[str]  # leaf, then its intermediate


@dataclass(frozen=True)
class PkiArgs:
    pki: config.Pki
    units: tuple[UnitTrust, ...]
    # Only for an imported root: the org root certificate and its key (secret), as Inputs.
    imported_root_cert: pulumi.Input[str] | None = None
    imported_root_key: pulumi.Input[str] | None = None


class Pki(pulumi.ComponentResource):
    root_cert_pem: pulumi.Output[str]
    intermediates: dict[str, IssuedCa]
    leaves: dict[str, IssuedLeaf]  # by role, e.g. "aws-syd-bigip-egress", "aws-syd-app-bookinfo"

    def __init__(self, name: str, args: PkiArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:pki:Pki", name, None, opts)
        specs = {s.role: s for s in plan(args.pki, args.units)}
        key = key_args(args.pki.key_algorithm)
        child = pulumi.ResourceOptions(parent=self)

        if isinstance(args.pki.root, config.GeneratedRoot):
            spec = specs[root_role()]
            root_key = _private_key(f"{name}-root-key", key, child)
            root = tls.SelfSignedCert(
                f"{name}-root",
                private_key_pem=root_key.private_key_pem,
                subject=tls.SelfSignedCertSubjectArgs(**_subject(spec)),
                **_cert_args(spec),
                opts=child,
            )
            root_cert: pulumi.Output[str] = root.cert_pem
            root_key_pem: pulumi.Output[str] = pulumi.Output.secret(root_key.private_key_pem)
        else:
            if args.imported_root_cert is None or args.imported_root_key is None:
                raise ValueError("an imported root needs imported_root_cert and imported_root_key")
            root_cert = pulumi.Output.from_input(args.imported_root_cert)
            root_key_pem = pulumi.Output.secret(args.imported_root_key)

        self.root_cert_pem = root_cert
        self.intermediates = {}
        self.leaves = {}
        for unit in args.units:
            spec = specs[intermediate_role(unit.unit)]
            cert, ikey = _issue(name, spec, key=key, ca_cert=root_cert, ca_key=root_key_pem, opts=child)
            ca = IssuedCa(
                cert_pem=cert.cert_pem,
                key_pem=pulumi.Output.secret(ikey.private_key_pem),
                chain_pem=pulumi.Output.concat(cert.cert_pem, root_cert),
                root_pem=root_cert,
                subject_rdns=spec.subject_rdns,
            )
            self.intermediates[unit.unit] = ca
            for leaf in (s for s in specs.values() if s.issuer == spec.role):
                lcert, lkey = _issue(name, leaf, key=key, ca_cert=ca.cert_pem, ca_key=ca.key_pem, opts=child)
                self.leaves[leaf.role] = IssuedLeaf(
                    cert_pem=lcert.cert_pem,
                    key_pem=pulumi.Output.secret(lkey.private_key_pem),
                    chain_pem=pulumi.Output.concat(lcert.cert_pem, ca.cert_pem),
                )

        self.register_outputs(
            {
                "rootCertPem": self.root_cert_pem,
                "intermediateCertPems": {u: ca.cert_pem for u, ca in self.intermediates.items()},
            }
        )


def _issue(
    name: str,
    spec: CertSpec,
    *,
    key: KeyArgs,
    ca_cert: pulumi.Input[str],
    ca_key: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> tuple[tls.LocallySignedCert, tls.PrivateKey]:
    """Key, CSR and certificate for one spec, signed by the given CA."""
    private_key = _private_key(f"{name}-{spec.role}-key", key, opts)
    csr = tls.CertRequest(
        f"{name}-{spec.role}-csr",
        private_key_pem=private_key.private_key_pem,
        subject=tls.CertRequestSubjectArgs(**_subject(spec)),
        uris=list(spec.uris) or None,
        dns_names=list(spec.dns_names) or None,
        opts=opts,
    )
    cert = tls.LocallySignedCert(
        f"{name}-{spec.role}",
        cert_request_pem=csr.cert_request_pem,
        ca_private_key_pem=ca_key,
        ca_cert_pem=ca_cert,
        **_cert_args(spec),
        opts=opts,
    )
    return cert, private_key


def _cert_args(spec: CertSpec) -> dict[str, Any]:
    """What a self-signed and a locally signed certificate take alike from the spec."""
    return {
        "is_ca_certificate": spec.is_ca,
        "max_path_length": spec.max_path_length,
        "allowed_uses": list(spec.allowed_uses),
        "validity_period_hours": spec.validity_hours,
        "early_renewal_hours": spec.early_renewal_hours,
        "set_subject_key_id": True,
    }


def _subject(spec: CertSpec) -> dict[str, str]:
    return {
        "common_name": spec.common_name,
        "organization": spec.organization,
        "organizational_unit": spec.organizational_unit,
    }
