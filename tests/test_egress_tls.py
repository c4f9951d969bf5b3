"""Real TLS handshakes on 127.0.0.1 between a mesh workload and the BIG-IP egress identity.

The server stands in for the egress virtual server's client-ssl profile: it presents the BIG-IP
identity the PKI plans, requires a client certificate and trusts only the unit's mesh CA chain
(peer_cert_mode require, ca_file = mesh CA bundle). The client stands in for an Istio sidecar
with ISTIO_MUTUAL: it presents the pod's workload certificate and verifies the server against
the mesh root plus the ServiceEntry's subjectAltNames (secure naming).
"""

from __future__ import annotations

import ssl

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


def _egress(chain: dict[str, t.Issued], client: t.Issued | None, client_chain: str = "") -> t.Handshake:
    """The egress profile's side: the BIG-IP identity, requiring a client certificate from the
    mesh chain (intermediate + root); the client trusts the org root."""
    intermediate = chain[pki.intermediate_role("onprem-syd")]
    root = chain[pki.root_role()]
    ident = chain[pki.egress_role("onprem-syd")]
    return t.handshake(
        (ident.cert_pem + intermediate.cert_pem + root.cert_pem, ident.key_pem),
        client_ca=intermediate.cert_pem + root.cert_pem,
        trust=root.cert_pem,
        client=(client.cert_pem + client_chain, client.key_pem) if client else None,
    )


def test_the_bigip_identity_accepts_a_bookinfo_workload_certificate_from_the_mesh_ca(chain) -> None:
    intermediate = chain[pki.intermediate_role("onprem-syd")]
    workload = t.istio_workload_cert(
        intermediate, trust_domain=TD, namespace="bookinfo", service_account="bookinfo-productpage"
    )
    result = _egress(chain, workload, intermediate.cert_pem)
    assert result.server_error is None and result.client_error is None
    # Secure naming: the sidecar accepts only the SAN the ServiceEntry names.
    assert result.client_saw is not None
    assert t.uris_of(result.client_saw) == [pki.egress_spiffe_id(TD)]


def test_fails_a_workload_certificate_from_another_ca(chain) -> None:
    foreign_root = t.issue(t.ca_spec("foreign-root", max_path_length=1))
    foreign_ca = t.issue(t.ca_spec("foreign-ca", issuer="foreign-root", max_path_length=0), foreign_root)
    rogue = t.istio_workload_cert(foreign_ca, trust_domain=TD, namespace="bookinfo", service_account="x")
    result = _egress(chain, rogue, foreign_ca.cert_pem)
    assert result.server_error is not None or result.client_error is not None
    assert isinstance(result.server_error, ssl.SSLError)


def test_fails_a_client_without_a_certificate(chain) -> None:
    result = _egress(chain, None)
    assert isinstance(result.server_error, ssl.SSLError)


def test_the_egress_identity_is_a_leaf_for_server_and_client_auth_with_one_spiffe_uri(chain) -> None:
    ident = chain[pki.egress_role("onprem-syd")].cert
    assert ident.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    ekus = set(ident.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert ekus == {x509.ExtendedKeyUsageOID.SERVER_AUTH, x509.ExtendedKeyUsageOID.CLIENT_AUTH}
    assert t.uris_of(ident) == [f"spiffe://{TD}/ns/f5-bigip/sa/egress-gateway"]
