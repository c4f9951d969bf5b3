"""Real TLS handshakes on 127.0.0.1 between a mesh workload and the BIG-IP egress identity.

The server stands in for the egress virtual server's client-ssl profile: it presents the BIG-IP
identity the PKI plans, requires a client certificate and trusts only the unit's mesh CA chain
(peer_cert_mode require, ca_file = mesh CA bundle). The client stands in for an Istio sidecar
with ISTIO_MUTUAL: it presents the pod's workload certificate and verifies the server against
the mesh root plus the ServiceEntry's subjectAltNames (secure naming).
"""

from __future__ import annotations

import socket
import ssl
import tempfile
import threading
from pathlib import Path

import pytest
from cryptography import x509

from components import config, pki
from tests import pkitools as t

TD = "onprem-syd.cpaas.example-bank.com"
UNIT = pki.UnitTrust("onprem-syd", TD, egress=True)
MODEL = config.Pki.model_validate(
    {
        "organization": "Example Bank",
        "root": {"source": "generated", "commonName": "Example Bank Test Root CA"},
    }
)


@pytest.fixture(scope="module")
def chain() -> dict[str, t.Issued]:
    return t.issue_plan(pki.plan(MODEL, [UNIT]))


def _write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def _handshake(server_side: t.Issued, ca_bundle: str, client: t.Issued, client_chain: str, root: str):
    """Run one handshake; return (server error or None, client error or None, server cert)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        server_ctx.load_cert_chain(
            _write(folder, "srv.pem", server_side.cert_pem + ca_bundle),
            _write(folder, "srv.key", server_side.key_pem),
        )
        server_ctx.verify_mode = ssl.CERT_REQUIRED
        server_ctx.load_verify_locations(cafile=_write(folder, "mesh-ca.pem", ca_bundle))

        client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client_ctx.check_hostname = False  # secure naming is a URI SAN check, done below
        client_ctx.load_verify_locations(cafile=_write(folder, "root.pem", root))
        client_ctx.load_cert_chain(
            _write(folder, "cli.pem", client.cert_pem + client_chain),
            _write(folder, "cli.key", client.key_pem),
        )

        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(5)
        port = listener.getsockname()[1]
        result: dict[str, object] = {}

        def serve() -> None:
            try:
                conn, _ = listener.accept()
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(16)
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError) as exc:
                result["server"] = exc

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        peer = None
        try:
            raw = socket.create_connection(("127.0.0.1", port), timeout=5)
            with client_ctx.wrap_socket(raw) as tls:
                peer = tls.getpeercert(binary_form=True)
                tls.sendall(b"hello")
                tls.recv(16)
        except (ssl.SSLError, OSError) as exc:
            result["client"] = exc
        thread.join(5)
        listener.close()
        return result.get("server"), result.get("client"), peer


def test_the_bigip_identity_accepts_a_bookinfo_workload_certificate_from_the_mesh_ca(chain) -> None:
    intermediate = chain[pki.intermediate_role("onprem-syd")]
    root = chain[pki.root_role()]
    workload = t.istio_workload_cert(
        intermediate, trust_domain=TD, namespace="bookinfo", service_account="bookinfo-productpage"
    )
    server_err, client_err, peer = _handshake(
        chain[pki.egress_role("onprem-syd")],
        intermediate.cert_pem + root.cert_pem,
        workload,
        intermediate.cert_pem,
        root.cert_pem,
    )
    assert server_err is None and client_err is None
    # Secure naming: the sidecar accepts only the SAN the ServiceEntry names.
    assert peer is not None
    assert t.uris_of(x509.load_der_x509_certificate(peer)) == [pki.egress_spiffe_id(TD)]


def test_fails_a_workload_certificate_from_another_ca(chain) -> None:
    intermediate = chain[pki.intermediate_role("onprem-syd")]
    root = chain[pki.root_role()]
    foreign_root = t.issue(t.ca_spec("foreign-root", max_path_length=1))
    foreign_ca = t.issue(t.ca_spec("foreign-ca", issuer="foreign-root", max_path_length=0), foreign_root)
    rogue = t.istio_workload_cert(foreign_ca, trust_domain=TD, namespace="bookinfo", service_account="x")
    server_err, client_err, _ = _handshake(
        chain[pki.egress_role("onprem-syd")],
        intermediate.cert_pem + root.cert_pem,
        rogue,
        foreign_ca.cert_pem,
        root.cert_pem,
    )
    assert server_err is not None or client_err is not None
    assert isinstance(server_err, ssl.SSLError)


def test_fails_a_client_without_a_certificate(chain) -> None:
    intermediate = chain[pki.intermediate_role("onprem-syd")]
    root = chain[pki.root_role()]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ident = chain[pki.egress_role("onprem-syd")]
        server_ctx.load_cert_chain(
            _write(folder, "s.pem", ident.cert_pem), _write(folder, "s.key", ident.key_pem)
        )
        server_ctx.verify_mode = ssl.CERT_REQUIRED
        server_ctx.load_verify_locations(
            cafile=_write(folder, "ca.pem", intermediate.cert_pem + root.cert_pem)
        )
        client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client_ctx.check_hostname = False
        client_ctx.load_verify_locations(cafile=_write(folder, "r.pem", root.cert_pem))
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(5)
        errors: list[Exception] = []

        def serve() -> None:
            try:
                conn, _ = listener.accept()
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(16)
            except (ssl.SSLError, OSError) as exc:
                errors.append(exc)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with socket.create_connection(listener.getsockname(), timeout=5) as raw:
            try:
                with client_ctx.wrap_socket(raw) as tls:
                    tls.sendall(b"x")
                    tls.recv(16)
            except (ssl.SSLError, OSError):
                pass
        thread.join(5)
        listener.close()
    assert errors and isinstance(errors[0], ssl.SSLError)


def test_the_egress_identity_is_a_leaf_for_server_and_client_auth_with_one_spiffe_uri(chain) -> None:
    ident = chain[pki.egress_role("onprem-syd")].cert
    assert ident.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    ekus = set(ident.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert ekus == {x509.ExtendedKeyUsageOID.SERVER_AUTH, x509.ExtendedKeyUsageOID.CLIENT_AUTH}
    assert t.uris_of(ident) == [f"spiffe://{TD}/ns/f5-bigip/sa/egress-gateway"]
