"""Real certificates, built with `cryptography` the way the tls provider and istiod would.

`issue(spec, issuer)` mirrors hashicorp/terraform-provider-tls `createCertificate` (Go
`x509.CreateCertificate` underneath) for a `pki.CertSpec`; `istio_workload_cert` mirrors istiod's
`genCertTemplateFromCSR`; `verify_chain` runs real RFC 5280 path validation
(`cryptography.x509.verification`, which checks signatures, validity, basicConstraints, pathlen,
keyCertSign and EKU). Reusable for loopback TLS tests: every `Issued` carries its key and PEMs.

Refs:
- provider: terraform-provider-tls internal/provider/common_cert.go (keyUsages,
  extendedKeyUsages, createCertificate), resource_locally_signed_cert.go (subject/SANs from CSR)
- Go: crypto/x509 buildCertExtensions (KU and BasicConstraints critical, EKU non-critical, SAN
  critical iff the subject is empty, pathlen omitted when MaxPathLen==0 && !MaxPathLenZero,
  AKI = parent SKI unless self-signed)
- istiod: security/pkg/pki/util/generate_cert.go (genCertTemplateFromCSR), san.go
"""

from __future__ import annotations

import datetime as dt
import secrets
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from components import config, pki

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

UTC = dt.UTC

# terraform-provider-tls common_cert.go `keyUsages` (name -> cryptography KeyUsage field).
KEY_USAGES: Mapping[str, str] = {
    "digital_signature": "digital_signature",
    "content_commitment": "content_commitment",
    "key_encipherment": "key_encipherment",
    "data_encipherment": "data_encipherment",
    "key_agreement": "key_agreement",
    "cert_signing": "key_cert_sign",
    "crl_signing": "crl_sign",
    "encipher_only": "encipher_only",
    "decipher_only": "decipher_only",
}

# terraform-provider-tls common_cert.go `extendedKeyUsages` (Go's OIDs for each ExtKeyUsage).
EXTENDED_KEY_USAGES: Mapping[str, x509.ObjectIdentifier] = {
    "any_extended": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsec_end_system": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsec_tunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsec_user": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoft_server_gated_crypto": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscape_server_gated_crypto": x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
    "microsoft_commercial_code_signing": x509.ObjectIdentifier("1.3.6.1.4.1.311.2.1.22"),
    "microsoft_kernel_code_signing": x509.ObjectIdentifier("1.3.6.1.4.1.311.61.1.1"),
}

_CURVES: Mapping[str, ec.EllipticCurve] = {
    "P224": ec.SECP224R1(),
    "P256": ec.SECP256R1(),
    "P384": ec.SECP384R1(),
    "P521": ec.SECP521R1(),
}

# istiod's ClockSkewGracePeriod (NotBefore = now - 2 min) and default workload TTL.
CLOCK_SKEW_GRACE = dt.timedelta(minutes=2)
WORKLOAD_TTL = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key; `spec` is None for certs not made from the plan."""

    cert: x509.Certificate
    key: PrivateKey
    spec: pki.CertSpec | None = None

    @property
    def cert_pem(self) -> str:
        return pem(self.cert)

    @property
    def key_pem(self) -> str:
        return key_pem(self.key)

    def extension(self, ext_type: type[x509.ExtensionType]) -> x509.Extension:
        return self.cert.extensions.get_extension_for_class(ext_type)


# ---------------------------------------------------------------------------------------------
# Keys, names, PEM
# ---------------------------------------------------------------------------------------------


def new_key(algorithm: config.KeyAlgorithm = "ECDSA-P256") -> PrivateKey:
    """A key as tls.PrivateKey makes it from `pki.key_args(algorithm)`."""
    args = key_arguments(algorithm)
    if args["algorithm"] == "ECDSA":
        return ec.generate_private_key(_CURVES[str(args["ecdsa_curve"])])
    if args["algorithm"] == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=int(args["rsa_bits"]))
    if args["algorithm"] == "ED25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unsupported key args {args}")


def key_arguments(algorithm: config.KeyAlgorithm) -> dict[str, Any]:
    """`pki.key_args(algorithm)` as a dict (whether it returns a mapping or a dataclass)."""
    args = pki.key_args(algorithm)
    if isinstance(args, Mapping):
        return dict(args)
    return {k: getattr(args, k) for k in ("algorithm", "ecdsa_curve", "rsa_bits")}


def pem(*certs: x509.Certificate) -> str:
    """Concatenated PEM blocks, in the order given (leaf first for a chain)."""
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def key_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def subject_of(spec: pki.CertSpec) -> x509.Name:
    """The subject Go's pkix.Name encodes (order O, OU, CN; empty fields omitted)."""
    fields = [
        (NameOID.ORGANIZATION_NAME, spec.organization),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, spec.organizational_unit),
        (NameOID.COMMON_NAME, spec.common_name),
    ]
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in fields if value])


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    """istio pkg/spiffe: spiffe://<td>/ns/<ns>/sa/<sa>."""
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


def uris_of(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.UniformResourceIdentifier)


# ---------------------------------------------------------------------------------------------
# Extensions, as the provider encodes them
# ---------------------------------------------------------------------------------------------


def key_usage(allowed_uses: Iterable[str]) -> x509.KeyUsage | None:
    """KeyUsage from allowed_uses (None when no KU bit is set: Go then omits the extension)."""
    bits = {KEY_USAGES[u] for u in allowed_uses if u in KEY_USAGES}
    if not bits:
        return None
    return x509.KeyUsage(**{field: field in bits for field in KEY_USAGES.values()})


def extended_key_usage(allowed_uses: Iterable[str]) -> x509.ExtendedKeyUsage | None:
    oids = [EXTENDED_KEY_USAGES[u] for u in allowed_uses if u in EXTENDED_KEY_USAGES]
    return x509.ExtendedKeyUsage(oids) if oids else None


def provider_path_length(
    is_ca: bool, max_path_length: int | None, *, max_path_len_zero: bool = False
) -> int | None:
    """The pathLenConstraint the provider emits: an emulation read from its source, not run.

    The provider sets Go's `MaxPathLen` from max_path_length but never `MaxPathLenZero`; Go encodes
    MaxPathLen 0 without MaxPathLenZero as "no limit", so 0 and None both give no pathlen.
    `max_path_len_zero=True` models a provider that does set MaxPathLenZero (a fixed provider or
    another issuer), the only way to get an explicit pathlen:0.
    Ref: hashicorp/terraform-provider-tls v4.2.1 (and main at d72d90e1),
      internal/provider/common_cert.go:181-190 (createCertificate sets template.MaxPathLen only);
      MaxPathLenZero appears nowhere in that repository.
    Ref: Go crypto/x509, the Certificate.MaxPathLenZero field's doc comment.
    Not verified offline: the terraform-provider-tls commit pulumi-tls 5.6.2 wraps.
    """
    if not is_ca or max_path_length is None or max_path_length < 0:
        return None
    if max_path_length == 0 and not max_path_len_zero:
        return None
    return max_path_length


def _hash_for(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None:
    """Go's signingParamsForKey: SHA-256 for RSA and P-256, SHA-384 for P-384, SHA-512 for P-521."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = key.curve.key_size
        if size > 384:
            return hashes.SHA512()
        if size > 256:
            return hashes.SHA384()
    return hashes.SHA256()


def _serial() -> int:
    # Go: rand.Int(rand.Reader, 2^128); 0 is not a valid serial, so avoid it.
    return secrets.randbelow(1 << 128) or 1


def _now(now: dt.datetime | None) -> dt.datetime:
    return (now or dt.datetime.now(UTC)).replace(microsecond=0)


# ---------------------------------------------------------------------------------------------
# Issuing
# ---------------------------------------------------------------------------------------------


def issue(
    spec: pki.CertSpec,
    issuer: Issued | None = None,
    *,
    key: PrivateKey | None = None,
    algorithm: config.KeyAlgorithm = "ECDSA-P256",
    now: dt.datetime | None = None,
    set_subject_key_id: bool = True,
    max_path_len_zero: bool = False,
) -> Issued:
    """`spec` as tls.SelfSignedCert (issuer None) or tls.CertRequest + tls.LocallySignedCert.

    `set_subject_key_id` is what the Pki component passes (True); `now` is the provider's
    NotBefore (validity = now .. now + validity_hours; the provider does not clamp to the CA).
    """
    key = key or new_key(algorithm)
    start = _now(now)
    subject = subject_of(spec)
    if spec.is_ca and len(subject) == 0:
        # common_cert.go: "Must contain at least one Distinguished Name when creating a CA"
        raise ValueError(f"{spec.role}: a CA certificate needs a non-empty subject")
    signer = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(hours=spec.validity_hours))
    )
    ku = key_usage(spec.allowed_uses)
    if ku is not None:
        builder = builder.add_extension(ku, critical=True)
    eku = extended_key_usage(spec.allowed_uses)
    if eku is not None:
        builder = builder.add_extension(eku, critical=False)
    path_length = provider_path_length(spec.is_ca, spec.max_path_length, max_path_len_zero=max_path_len_zero)
    builder = builder.add_extension(
        x509.BasicConstraints(ca=spec.is_ca, path_length=path_length), critical=True
    )
    if spec.is_ca or set_subject_key_id:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    if issuer is not None:
        builder = _with_aki(builder, issuer.cert)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in spec.dns_names]
    sans += [x509.UniformResourceIdentifier(u) for u in spec.uris]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=len(subject) == 0)
    cert = builder.sign(signer, _hash_for(signer))
    return Issued(cert=cert, key=key, spec=spec)


def _with_aki(builder: x509.CertificateBuilder, parent: x509.Certificate) -> x509.CertificateBuilder:
    """Go: AuthorityKeyId = parent.SubjectKeyId when the parent has one (not for self-signed)."""
    try:
        ski = parent.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return builder
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    return builder.add_extension(aki, critical=False)


def issue_plan(
    specs: Sequence[pki.CertSpec],
    *,
    algorithm: config.KeyAlgorithm = "ECDSA-P256",
    root: Issued | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Issued]:
    """Every cert of a plan, by role, as the Pki component would get them from the provider.

    For a plan without a root spec (imported root) pass the imported root as `root`.
    """
    issued: dict[str, Issued] = {}
    if root is not None:
        issued[pki.root_role()] = root
    for spec in specs:
        parent = issued[spec.issuer] if spec.issuer else None
        issued[spec.role] = issue(spec, parent, algorithm=algorithm, now=now)
    return issued


def ca_spec(
    role: str,
    *,
    issuer: str = "",
    max_path_length: int | None = None,
    allowed_uses: tuple[str, ...] = pki.CA_USES,
    validity_hours: int = 24 * 365,
    organization: str = "Test Org",
) -> pki.CertSpec:
    """A CA spec outside the plan (foreign roots, imported roots, rogue sub-CAs)."""
    return pki.CertSpec(
        role=role,
        common_name=f"{organization} {role}",
        organization=organization,
        organizational_unit="tests",
        is_ca=True,
        max_path_length=max_path_length,
        allowed_uses=allowed_uses,
        validity_hours=validity_hours,
        issuer=issuer,
    )


def istio_workload_cert(
    intermediate: Issued | x509.Certificate,
    key: PrivateKey | None = None,
    trust_domain: str = "cluster.local",
    namespace: str = "default",
    service_account: str = "default",
    *,
    ttl: dt.timedelta = WORKLOAD_TTL,
    now: dt.datetime | None = None,
    leaf_key: PrivateKey | None = None,
) -> Issued:
    """A workload leaf as istiod signs it with the plugged-in `ca-cert.pem`/`ca-key.pem`.

    Empty subject, one critical URI SAN (the SPIFFE ID), KU digitalSignature+keyEncipherment
    (critical), EKU serverAuth+clientAuth, CA:FALSE (critical), AKI from the CA's SKI, NotBefore
    now-2min, NotAfter clamped to the CA's NotAfter; refuses an expired CA like istiod does.
    `intermediate` may be an `Issued` (its key is used unless `key` is given).
    """
    ca_cert = intermediate.cert if isinstance(intermediate, Issued) else intermediate
    signer = key or (intermediate.key if isinstance(intermediate, Issued) else None)
    if signer is None:
        raise ValueError("istio_workload_cert needs the intermediate's key")
    leaf_key = leaf_key or ec.generate_private_key(ec.SECP256R1())
    start = _now(now)
    if start >= ca_cert.not_valid_after_utc:
        raise ValueError(f"signing certificate has expired at {ca_cert.not_valid_after_utc}")
    not_after = min(start + ttl, ca_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca_cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(_serial())
        .not_valid_before(start - CLOCK_SKEW_GRACE)
        .not_valid_after(not_after)
        .add_extension(key_usage(("digital_signature", "key_encipherment")), critical=True)  # type: ignore[arg-type]
        .add_extension(extended_key_usage(("server_auth", "client_auth")), critical=False)  # type: ignore[arg-type]
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    builder = _with_aki(builder, ca_cert)
    uri = spiffe_id(trust_domain, namespace, service_account)
    builder = builder.add_extension(
        x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=True
    )
    return Issued(cert=builder.sign(signer, _hash_for(signer)), key=leaf_key)


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


def verify_chain(
    leaf: Issued | x509.Certificate,
    intermediates: Sequence[Issued | x509.Certificate],
    root: Issued | x509.Certificate | Sequence[Issued | x509.Certificate],
    *,
    at: dt.datetime | None = None,
) -> list[x509.Certificate]:
    """Validate leaf -> intermediates -> root as an mTLS peer (client) certificate.

    Uses cryptography's RFC 5280 / CA-B-Forum path validation with the client-auth profile
    (URI-only SPIFFE leaves have no DNS name for a ServerVerifier). Returns the built chain,
    leaf first; raises `cryptography.x509.verification.VerificationError` on failure.
    """
    roots = [root] if isinstance(root, (Issued, x509.Certificate)) else list(root)
    verifier = (
        PolicyBuilder()
        .store(Store([_cert(r) for r in roots]))
        .time(at or dt.datetime.now(UTC))
        .build_client_verifier()
    )
    verified = verifier.verify(_cert(leaf), [_cert(c) for c in intermediates])
    return list(verified.chain)


def _cert(value: Issued | x509.Certificate) -> x509.Certificate:
    return value.cert if isinstance(value, Issued) else value


# ---------------------------------------------------------------------------------------------
# Client leaves with arbitrary SANs (iRule tests)
# ---------------------------------------------------------------------------------------------


def client_leaf(
    issuer: Issued,
    sans: Sequence[x509.GeneralName] | None,
    *,
    subject: x509.Name | None = None,
    san_critical: bool | None = None,
    bare: bool = False,
    now: dt.datetime | None = None,
) -> Issued:
    """A client leaf signed by `issuer` carrying exactly `sans` (None: no SAN extension).

    The other extensions are those of `istio_workload_cert` (KU, EKU, CA:FALSE, AKI). The SAN is
    critical iff the subject is empty (Go/istiod), unless `san_critical` says otherwise.
    `bare=True` gives a certificate without any extension ("(no extensions)" on a BIG-IP).
    """
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    start = _now(now)
    name = subject if subject is not None else x509.Name([])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(_serial())
        .not_valid_before(start - CLOCK_SKEW_GRACE)
        .not_valid_after(min(start + WORKLOAD_TTL, issuer.cert.not_valid_after_utc))
    )
    if not bare:
        builder = (
            builder.add_extension(key_usage(("digital_signature", "key_encipherment")), critical=True)  # type: ignore[arg-type]
            .add_extension(extended_key_usage(("server_auth", "client_auth")), critical=False)  # type: ignore[arg-type]
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        builder = _with_aki(builder, issuer.cert)
        if sans is not None:
            critical = len(name) == 0 if san_critical is None else san_critical
            builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=critical)
    return Issued(cert=builder.sign(issuer.key, _hash_for(issuer.key)), key=leaf_key)


# ---------------------------------------------------------------------------------------------
# Loopback TLS
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Handshake:
    server_error: Exception | None
    client_error: Exception | None
    server_saw: x509.Certificate | None  # the client's leaf, as the server verified it
    client_saw: x509.Certificate | None  # the server's leaf

    @property
    def ok(self) -> bool:
        return self.server_error is None and self.client_error is None


def handshake(
    server: tuple[str, str],
    *,
    client_ca: str | None,
    trust: str,
    client: tuple[str, str] | None = None,
    server_hostname: str | None = None,
) -> Handshake:
    """One TLS 1.2+ connection on 127.0.0.1. `server` = (cert chain PEM, key PEM); `client_ca`
    set means the server requires a client certificate chaining to it; the client trusts `trust`
    and, with `server_hostname`, sends SNI and checks the server's DNS name."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def write(name: str, text: str) -> str:
            (folder / name).write_text(text)
            return str(folder / name)

        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        server_ctx.load_cert_chain(write("server.pem", server[0]), write("server.key", server[1]))
        if client_ca is not None:
            server_ctx.verify_mode = ssl.CERT_REQUIRED
            server_ctx.load_verify_locations(cadata=client_ca)
        client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        client_ctx.check_hostname = server_hostname is not None
        client_ctx.load_verify_locations(cadata=trust)
        if client is not None:
            client_ctx.load_cert_chain(write("client.pem", client[0]), write("client.key", client[1]))

        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(5)
        result: dict[str, Any] = {}

        def serve() -> None:
            try:
                conn, _ = listener.accept()
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    der = tls.getpeercert(binary_form=True)
                    result["server_saw"] = x509.load_der_x509_certificate(der) if der else None
                    tls.recv(16)
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError) as exc:
                result["server_error"] = exc

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            raw = socket.create_connection(listener.getsockname(), timeout=5)
            with client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                der = tls.getpeercert(binary_form=True)
                result["client_saw"] = x509.load_der_x509_certificate(der) if der else None
                tls.sendall(b"hello")
                tls.recv(16)
        except (ssl.SSLError, OSError) as exc:
            result["client_error"] = exc
        thread.join(5)
        listener.close()
    return Handshake(
        result.get("server_error"),
        result.get("client_error"),
        result.get("server_saw"),
        result.get("client_saw"),
    )
