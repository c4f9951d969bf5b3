"""A test double for the tls provider that issues real keys, CSRs and certificates.

`TlsDouble` is a `tools.engine.StateMocks` whose `new_resource` for the four pulumi-tls resources
the PKI uses (PrivateKey, SelfSignedCert, CertRequest, LocallySignedCert) does with `cryptography`
what terraform-provider-tls does with Go's crypto/x509, from the inputs it receives. Every other
resource type is left to `StateMocks`. Because the mock monitor hands each resource its
dependencies' real outputs, real PEMs flow on into the cacerts Secret, the BIG-IP key and the
TLS Secrets, so tests can check both that the chain works and that the keys never leak.

Emulated provider behaviour (terraform-provider-tls internal/provider, Go crypto/x509):
- PrivateKey: algorithm RSA (rsaBits, default 2048), ECDSA (ecdsaCurve, default P224) or
  ED25519; privateKeyPem is PKCS#1 / SEC1 / PKCS#8 respectively, privateKeyPemPkcs8 always
  PKCS#8; the private outputs are secrets.
- subject (Go pkix.Name order C, ST, L, STREET, PostalCode, O, OU, CN, SERIALNUMBER), uris,
  dnsNames, ipAddresses; a CSR carries them into the LocallySignedCert.
- allowedUses -> KeyUsage (critical; omitted when no bit) and ExtendedKeyUsage (non-critical).
- isCaCertificate + maxPathLength -> BasicConstraints (critical); maxPathLength 0 gives **no**
  pathlen (the provider never sets Go's MaxPathLenZero), `tests.pkitools.provider_path_length`
  (Ref: hashicorp/terraform-provider-tls v4.2.1 internal/provider/common_cert.go:181-190).
- SubjectKeyIdentifier when setSubjectKeyId or a CA; AuthorityKeyIdentifier = the CA's SKI.
- SAN critical iff the subject is empty; validity = now .. now + validityPeriodHours.

Inputs arrive with secrets wrapped in the RPC secret envelope; they are unwrapped here. What the
double issued is kept by resource name (`keys`, `certs`, `csrs`) for the tests to read back.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import threading
from collections.abc import Mapping
from typing import Any

import pulumi.runtime
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from tests import pkitools
from tools import engine
from tools.sdk_internals import unwrap_rpc_secret, wrap_rpc_secret

PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
SELF_SIGNED = "tls:index/selfSignedCert:SelfSignedCert"
CERT_REQUEST = "tls:index/certRequest:CertRequest"
LOCALLY_SIGNED = "tls:index/locallySignedCert:LocallySignedCert"
TLS_TYPES = (PRIVATE_KEY, SELF_SIGNED, CERT_REQUEST, LOCALLY_SIGNED)

# Go pkix.Name.ToRDNSequence order, with the provider's subject field names.
_SUBJECT_FIELDS = (
    ("country", NameOID.COUNTRY_NAME),
    ("province", NameOID.STATE_OR_PROVINCE_NAME),
    ("locality", NameOID.LOCALITY_NAME),
    ("streetAddresses", NameOID.STREET_ADDRESS),
    ("postalCode", NameOID.POSTAL_CODE),
    ("organization", NameOID.ORGANIZATION_NAME),
    ("organizationalUnit", NameOID.ORGANIZATIONAL_UNIT_NAME),
    ("commonName", NameOID.COMMON_NAME),
    ("serialNumber", NameOID.SERIAL_NUMBER),
)
_CURVES = {"P224": ec.SECP224R1, "P256": ec.SECP256R1, "P384": ec.SECP384R1, "P521": ec.SECP521R1}


def unwrap(value: Any) -> Any:
    """A deserialized input with every RPC secret envelope removed (recursively)."""
    value = unwrap_rpc_secret(value)
    if isinstance(value, Mapping):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [unwrap(v) for v in value]
    return value


class TlsDouble(engine.StateMocks):
    """StateMocks plus real pulumi-tls resources; `now` fixes NotBefore (default: the clock).

    `command_stdout` answers `command:local:Command` resources by name (e.g. the k3d kubeconfig
    read) with that stdout, as a secret. `seen` keeps every resource's inputs, unwrapped, by name:
    what the real providers would receive.
    """

    def __init__(
        self,
        stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        now: dt.datetime | None = None,
        command_stdout: Mapping[str, str] | None = None,
    ):
        super().__init__(stack_outputs)
        self.now = now
        self.command_stdout = dict(command_stdout or {})
        self.seen: dict[str, tuple[str, dict[str, Any]]] = {}
        self.keys: dict[str, pkitools.PrivateKey] = {}
        self.certs: dict[str, x509.Certificate] = {}
        self.csrs: dict[str, x509.CertificateSigningRequest] = {}
        self._lock = threading.Lock()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        inputs = unwrap(dict(args.inputs))
        with self._lock:
            self.seen[args.name] = (args.typ, inputs)
        if args.typ == "command:local:Command" and args.name in self.command_stdout:
            return f"{args.name}-id", {
                **args.inputs,
                "stdout": wrap_rpc_secret(self.command_stdout[args.name]),
            }
        if args.typ not in TLS_TYPES:
            return super().new_resource(args)
        state = dict(args.inputs)
        if args.typ == PRIVATE_KEY:
            state.update(self._private_key(args.name, inputs))
        elif args.typ == CERT_REQUEST:
            state["certRequestPem"] = self._csr(args.name, inputs)
        else:
            state["certPem"] = self._certificate(args.name, args.typ, inputs)
        return f"{args.name}-id", state

    # -- resources -------------------------------------------------------------------------

    def _private_key(self, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        algorithm = inputs.get("algorithm")
        key: pkitools.PrivateKey
        if algorithm == "RSA":
            key = rsa.generate_private_key(65537, int(inputs.get("rsaBits") or 2048))
            traditional = serialization.PrivateFormat.TraditionalOpenSSL
        elif algorithm == "ECDSA":
            key = ec.generate_private_key(_CURVES[str(inputs.get("ecdsaCurve") or "P224")]())
            traditional = serialization.PrivateFormat.TraditionalOpenSSL
        elif algorithm == "ED25519":
            key = ed25519.Ed25519PrivateKey.generate()
            traditional = serialization.PrivateFormat.PKCS8
        else:
            raise ValueError(f"{name}: unsupported algorithm {algorithm!r}")
        with self._lock:
            self.keys[name] = key
        enc = serialization.Encoding
        none = serialization.NoEncryption()
        public = key.public_key()
        return {
            "privateKeyPem": wrap_rpc_secret(key.private_bytes(enc.PEM, traditional, none).decode()),
            "privateKeyPemPkcs8": wrap_rpc_secret(pkitools.key_pem(key)),
            "privateKeyOpenssh": wrap_rpc_secret(
                key.private_bytes(enc.PEM, serialization.PrivateFormat.OpenSSH, none).decode()
            ),
            "publicKeyPem": public.public_bytes(
                enc.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode(),
            "publicKeyOpenssh": public.public_bytes(enc.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
            + "\n",
        }

    def _csr(self, name: str, inputs: Mapping[str, Any]) -> str:
        key = _load_key(inputs["privateKeyPem"])
        builder = x509.CertificateSigningRequestBuilder().subject_name(_subject(inputs.get("subject")))
        sans = _sans(inputs)
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        csr = builder.sign(key, pkitools._hash_for(key))
        with self._lock:
            self.csrs[name] = csr
        return csr.public_bytes(serialization.Encoding.PEM).decode()

    def _certificate(self, name: str, typ: str, inputs: Mapping[str, Any]) -> str:
        if typ == SELF_SIGNED:
            key = _load_key(inputs["privateKeyPem"])
            public = key.public_key()
            subject = _subject(inputs.get("subject"))
            sans = _sans(inputs)
            signer, issuer = key, None
        else:
            csr = x509.load_pem_x509_csr(str(inputs["certRequestPem"]).encode())
            if not csr.is_signature_valid:
                raise ValueError(f"{name}: the certificate request's signature is invalid")
            public, subject = csr.public_key(), csr.subject
            try:
                sans = list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
            except x509.ExtensionNotFound:
                sans = []
            signer = _load_key(inputs["caPrivateKeyPem"])
            issuer = x509.load_pem_x509_certificate(str(inputs["caCertPem"]).encode())
            if issuer.public_key() != signer.public_key():
                raise ValueError(f"{name}: caPrivateKeyPem does not match caCertPem")
        cert = self._sign(inputs, public, subject, sans, signer=signer, issuer=issuer)
        with self._lock:
            self.certs[name] = cert
        return pkitools.pem(cert)

    def _sign(
        self,
        inputs: Mapping[str, Any],
        public: Any,
        subject: x509.Name,
        sans: list[x509.GeneralName],
        *,
        signer: pkitools.PrivateKey,
        issuer: x509.Certificate | None,
    ) -> x509.Certificate:
        is_ca = bool(inputs.get("isCaCertificate", False))
        if is_ca and len(subject) == 0:
            raise ValueError("Must contain at least one Distinguished Name when creating a CA")
        start = (self.now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        hours = int(inputs["validityPeriodHours"])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject if issuer else subject)
            .public_key(public)
            .serial_number(pkitools._serial())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(hours=hours))
        )
        uses = [str(u) for u in inputs.get("allowedUses") or ()]
        ku = pkitools.key_usage(uses)
        if ku is not None:
            builder = builder.add_extension(ku, critical=True)
        eku = pkitools.extended_key_usage(uses)
        if eku is not None:
            builder = builder.add_extension(eku, critical=False)
        raw_path = inputs.get("maxPathLength")
        path_length = pkitools.provider_path_length(is_ca, None if raw_path is None else int(raw_path))
        builder = builder.add_extension(
            x509.BasicConstraints(ca=is_ca, path_length=path_length), critical=True
        )
        if is_ca or inputs.get("setSubjectKeyId"):
            builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        if issuer is not None:
            builder = pkitools._with_aki(builder, issuer)
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=len(subject) == 0)
        return builder.sign(signer, pkitools._hash_for(signer))

    # -- reading back ------------------------------------------------------------------------

    def issued(self, name: str) -> pkitools.Issued:
        """Certificate `name` with its key: resource `<name>-key` (the Pki component's naming)."""
        return pkitools.Issued(cert=self.certs[name], key=self.keys[f"{name}-key"])

    def of_type(self, typ: str) -> dict[str, dict[str, Any]]:
        """Unwrapped inputs of every resource of type `typ`, by name."""
        return {name: inputs for name, (t, inputs) in self.seen.items() if t == typ}


def _load_key(text: Any) -> pkitools.PrivateKey:
    key = serialization.load_pem_private_key(str(text).encode(), password=None)
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        raise ValueError(f"unsupported private key type {type(key).__name__}")
    return key


def _subject(subject: Mapping[str, Any] | None) -> x509.Name:
    attributes: list[x509.NameAttribute] = []
    for field, oid in _SUBJECT_FIELDS:
        value = (subject or {}).get(field)
        values = value if isinstance(value, (list, tuple)) else [value]
        # Go's pkix.Name takes no length limit (ub-common-name is 64; cryptography enforces it).
        attributes += [x509.NameAttribute(oid, str(v), _validate=False) for v in values if v]
    return x509.Name(attributes)


def _sans(inputs: Mapping[str, Any]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(str(d)) for d in inputs.get("dnsNames") or ()]
    names += [x509.IPAddress(ipaddress.ip_address(str(a))) for a in inputs.get("ipAddresses") or ()]
    names += [x509.UniformResourceIdentifier(str(u)) for u in inputs.get("uris") or ()]
    return names
