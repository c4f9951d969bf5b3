"""The PKI really works: real mTLS handshakes on 127.0.0.1 with the PEMs the program wires up.

The prod stack is built under `tests.tlsdouble.TlsDouble`, which issues real keys and
certificates; every PEM below is taken from what a consumer resource received (what the real
providers would get), not from the PKI component directly, so the test also covers the wiring:

- istiod's `cacerts` Secret (ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem): a bookinfo
  workload certificate is issued from it as istiod would (`tests.pkitools.istio_workload_cert`);
- the BIG-IP egress identity (f5bigip ssl Certificate + Key) and the client-ssl profile's mesh CA
  bundle (the `mesh-ca` Certificate), its iRule text and allow-list data group;
- the Istio ingress gateway's TLS Secret for the bookinfo app (`bookinfo-tls`).

The trust design (README "Trust design"): one org root; one intermediate per unit; TLS accepts a
workload of any unit (all chain to the one root), and authorisation is by SPIFFE trust domain plus
the namespace/service-account allow-list, on the BIG-IP (the egress iRule) and inside a cluster
(mesh AuthorizationPolicy).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from components import pki
from components.platform import build
from tests import pkitools, tclstubs
from tests.pkitools import Handshake, handshake
from tests.support import placeholder_inputs, stack
from tests.tlsdouble import TlsDouble
from tools import engine

UNIT, OTHER = "onprem-syd", "aws-syd"
FQDN = "bookinfo.apps.example-bank.com"
POD = ("10.30.64.17", 40312)  # a bookinfo pod of onprem-syd, as the BIG-IP sees it


@dataclass(frozen=True)
class Wired:
    """What the program handed to istiod, the BIG-IP and the ingress gateway, per unit."""

    double: TlsDouble
    seen: Mapping[str, Mapping[str, Any]]  # resource name -> unwrapped inputs

    def cacerts(self, unit: str) -> Mapping[str, str]:
        return self.seen[f"{unit}-mesh-cacerts"]["stringData"]

    def istiod_ca(self, unit: str) -> pkitools.Issued:
        data = self.cacerts(unit)
        key = serialization.load_pem_private_key(data["ca-key.pem"].encode(), None)
        return pkitools.Issued(cert=x509.load_pem_x509_certificate(data["ca-cert.pem"].encode()), key=key)  # type: ignore[arg-type]

    def trust_domain(self, unit: str) -> str:
        return stack("prod").unit(unit).mesh.trust_domain

    def workload(
        self,
        unit: str,
        namespace: str = "bookinfo",
        account: str = "bookinfo-productpage",
        *,
        trust_domain: str | None = None,
    ) -> tuple[str, str]:
        """(certificate + cert-chain.pem, key) of a workload istiod of `unit` signs."""
        leaf = pkitools.istio_workload_cert(
            self.istiod_ca(unit),
            trust_domain=trust_domain or self.trust_domain(unit),
            namespace=namespace,
            service_account=account,
        )
        return leaf.cert_pem + self.cacerts(unit)["cert-chain.pem"], leaf.key_pem

    def egress_server(self, unit: str) -> tuple[str, str, str]:
        """(identity + chain the profile sends, identity key, the profile's client CA bundle)."""
        mesh_ca = self.seen[f"{unit}-egress-mesh-ca"]["content"]
        pair = self.seen[f"{unit}-egress-identity"]
        return pair["certContent"] + mesh_ca, pair["keyContent"], mesh_ca

    def irule(self, unit: str) -> tclstubs.IRule:
        group = self.seen[f"{unit}-egress-allow-list"]
        records = {r["name"]: r["data"] for r in group["records"]}
        # The SNAT pools as rendered for this unit: the iRule may name only these.
        pools = {
            inputs["name"]: inputs["members"]
            for role, inputs in self.seen.items()
            if role.startswith(f"{unit}-egress-snat-pool") and "members" in inputs
        }
        return tclstubs.IRule(
            self.seen[f"{unit}-egress-irule"]["irule"], {group["name"]: records}, snat_pools=pools
        )

    def gateway(self, unit: str, app: str) -> tuple[str, str]:
        data = self.seen[f"{unit}-ingress-{app}-tls"]["stringData"]
        return data["tls.crt"], data["tls.key"]


@pytest.fixture(scope="module")
def wired() -> Wired:
    double = TlsDouble(stack_outputs={"example-bank/aks-clusters/prod-mel": {"kubeconfig": "<kubeconfig>"}})
    prod = stack("prod")
    # The render's placeholders for the deploy inputs; the PKI is the double's real one.
    engine.run(lambda: build(prod, placeholder_inputs(prod)), stack="prod", mocks=double)
    return Wired(double, {name: inputs for name, (_, inputs) in double.seen.items()})


# ---------------------------------------------------------------------------------------------
# Loopback TLS
# ---------------------------------------------------------------------------------------------


def egress(wired: Wired, unit: str, workload: tuple[str, str]) -> Handshake:
    """A sidecar (ISTIO_MUTUAL, trusting its unit's root-cert.pem) to `unit`'s egress VS."""
    cert, key, mesh_ca = wired.egress_server(unit)
    return handshake(
        (cert, key), client_ca=mesh_ca, trust=wired.cacerts(UNIT)["root-cert.pem"], client=workload
    )


# ---------------------------------------------------------------------------------------------
# The wiring itself
# ---------------------------------------------------------------------------------------------


def test_every_unit_has_its_own_intermediate_under_the_one_org_root(wired) -> None:
    root = wired.double.certs["pki-root"]
    roots = {wired.cacerts(u.name)["root-cert.pem"] for u in stack("prod").units}
    assert roots == {pkitools.pem(root)}
    intermediates = {u.name: wired.istiod_ca(u.name) for u in stack("prod").units}
    assert len({ca.cert.subject for ca in intermediates.values()}) == len(intermediates)
    for unit, ca in intermediates.items():
        assert pkitools.uris_of(ca.cert) == [f"spiffe://{wired.trust_domain(unit)}"]
        assert wired.cacerts(unit)["cert-chain.pem"] == ca.cert_pem + pkitools.pem(root)
        chain = pkitools.verify_chain(
            pkitools.istio_workload_cert(ca, trust_domain=wired.trust_domain(unit)), [ca], root
        )
        assert [c.subject for c in chain] == [x509.Name([]), ca.cert.subject, root.subject]


def test_the_bigip_egress_key_matches_its_certificate_and_the_mesh_ca_bundle_is_the_units_chain(
    wired,
) -> None:
    cert_pem, key_pem, mesh_ca = wired.egress_server(UNIT)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    assert key.public_key() == cert.public_key()
    assert mesh_ca == wired.cacerts(UNIT)["cert-chain.pem"]
    assert pkitools.uris_of(cert) == [pki.egress_spiffe_id(wired.trust_domain(UNIT))]


# ---------------------------------------------------------------------------------------------
# (a) workload -> BIG-IP egress identity (mTLS, then the iRule)
# ---------------------------------------------------------------------------------------------


def test_a_bookinfo_workload_and_the_bigip_egress_identity_complete_mtls_and_the_irule_admits_it(
    wired,
) -> None:
    result = egress(wired, UNIT, wired.workload(UNIT))
    assert result.ok, (result.server_error, result.client_error)
    # The sidecar's secure naming: the server is the identity the ServiceEntry names.
    assert result.client_saw is not None
    assert pkitools.uris_of(result.client_saw) == [pki.egress_spiffe_id(wired.trust_domain(UNIT))]
    # The BIG-IP saw the pod's SPIFFE ID; the iRule, as rendered for this unit, admits it.
    assert result.server_saw is not None
    identity = f"spiffe://{wired.trust_domain(UNIT)}/ns/bookinfo/sa/bookinfo-productpage"
    assert pkitools.uris_of(result.server_saw) == [identity]
    # Its issuer is the unit's own mesh CA, in the X509::issuer text of TMOS 13+ and of older versions.
    for style in ("openssl", "rfc2253"):
        outcome = wired.irule(UNIT).connect(result.server_saw, client=POD, issuer_style=style)
        assert outcome.error is None and outcome.allowed
        # bookinfo's own address, through a pool that holds it alone.
        assert outcome.snatpool is not None
        assert wired.irule(UNIT).snat_pools[outcome.snatpool] == ("/cpaas-onprem-syd/10.30.17.201",)


def test_the_egress_refuses_a_workload_without_a_certificate_or_from_a_foreign_ca(wired) -> None:
    cert, key, mesh_ca = wired.egress_server(UNIT)
    root = wired.cacerts(UNIT)["root-cert.pem"]
    assert not handshake((cert, key), client_ca=mesh_ca, trust=root).ok
    foreign_root = pkitools.issue(pkitools.ca_spec("foreign-root", max_path_length=1))
    foreign = pkitools.issue(pkitools.ca_spec("foreign-ca", issuer="foreign-root"), foreign_root)
    leaf = pkitools.istio_workload_cert(foreign, trust_domain=wired.trust_domain(UNIT), namespace="bookinfo")
    result = egress(wired, UNIT, (leaf.cert_pem + foreign.cert_pem, leaf.key_pem))
    assert isinstance(result.server_error, ssl.SSLError)


# ---------------------------------------------------------------------------------------------
# (b) BIG-IP -> Istio ingress gateway (re-encryption)
# ---------------------------------------------------------------------------------------------


def test_the_bigip_reencrypts_to_the_gateway_which_presents_the_bookinfo_certificate_for_its_fqdn(
    wired,
) -> None:
    root = wired.cacerts(UNIT)["root-cert.pem"]
    result = handshake(wired.gateway(UNIT, "bookinfo"), client_ca=None, trust=root, server_hostname=FQDN)
    assert result.ok, (result.server_error, result.client_error)
    assert result.client_saw is not None
    san = result.client_saw.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [FQDN]
    # The name check is real: the same certificate is refused for another host.
    other = handshake(
        wired.gateway(UNIT, "bookinfo"),
        client_ca=None,
        trust=root,
        server_hostname="httpbin.apps.example-bank.com",
    )
    assert isinstance(other.client_error, ssl.SSLCertVerificationError)


def test_any_units_gateway_certificate_verifies_against_the_one_org_root(wired) -> None:
    root = wired.cacerts(UNIT)["root-cert.pem"]
    for unit in (OTHER, "azure-mel"):
        assert handshake(wired.gateway(unit, "bookinfo"), client_ca=None, trust=root, server_hostname=FQDN).ok


def test_the_reencrypt_profile_verifies_the_gateway(wired) -> None:
    spec = wired.seen[f"{UNIT}-ingress-bookinfo-tlsprofile"]["spec"]
    assert spec["tls"]["serverSSL"] != "/Common/serverssl"


# ---------------------------------------------------------------------------------------------
# (c) another unit's workload: TLS accepts it, the trust-domain authorisation refuses it
# ---------------------------------------------------------------------------------------------


def test_a_workload_of_another_unit_passes_tls_but_the_irule_refuses_its_trust_domain(wired) -> None:
    result = egress(wired, UNIT, wired.workload(OTHER))
    assert result.ok, "one org root: the TLS layer accepts every unit's workloads"
    assert result.server_saw is not None
    identity = f"spiffe://{wired.trust_domain(OTHER)}/ns/bookinfo/sa/bookinfo-productpage"
    assert pkitools.uris_of(result.server_saw) == [identity]
    outcome = wired.irule(UNIT).connect(result.server_saw, client=POD)
    assert outcome.error is None and outcome.rejected and not outcome.allowed and outcome.snat_calls == ()
    assert outcome.logs == (
        f'egress-authz deny id={identity} reason="foreign trust domain" client={POD[0]}:{POD[1]}',
    )


def test_a_namespace_off_the_allow_list_passes_tls_but_the_irule_refuses_it(wired) -> None:
    result = egress(wired, UNIT, wired.workload(UNIT, namespace="httpbin", account="httpbin"))
    assert result.ok and result.server_saw is not None
    outcome = wired.irule(UNIT).connect(result.server_saw, client=POD)
    assert outcome.rejected and 'reason="namespace not allowed"' in outcome.logs[0]


def test_another_units_ca_signing_this_units_trust_domain_passes_tls_but_the_irule_refuses_its_issuer(
    wired,
) -> None:
    """One org root lets TLS accept any unit's CA, and a CA can write any trust domain into a
    leaf: aws-syd's istiod (or its leaked key) signing an onprem-syd SPIFFE ID. The iRule binds
    the trust domain to the unit's own intermediate by the leaf's issuer name."""
    spoofed = wired.workload(OTHER, trust_domain=wired.trust_domain(UNIT))
    result = egress(wired, UNIT, spoofed)
    assert result.ok and result.server_saw is not None
    identity = f"spiffe://{wired.trust_domain(UNIT)}/ns/bookinfo/sa/bookinfo-productpage"
    for style in ("openssl", "rfc2253"):
        outcome = wired.irule(UNIT).connect(result.server_saw, client=POD, issuer_style=style)
        assert outcome.error is None and outcome.rejected and not outcome.allowed
        assert outcome.logs == (
            f'egress-authz deny id={identity} reason="not issued by this unit\'s mesh CA" '
            f"client={POD[0]}:{POD[1]}",
        )
