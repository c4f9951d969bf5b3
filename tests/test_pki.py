"""The org PKI: the pure plan, the chain it yields as real certificates, and the Pki component.

Certificates are rebuilt from `pki.plan()` with `tests/pkitools.py` exactly as pulumi-tls
(hashicorp/terraform-provider-tls, Go crypto/x509) would encode them, and checked with real
RFC 5280 path validation (`cryptography.x509.verification`). The component is run under the mock
engine (`tools/engine.py`) and its tls resource inputs are compared with the plan.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from typing import Any

import pulumi
import pytest
from cryptography import x509
from cryptography.x509.verification import VerificationError

from components import config, mesh, pki
from tests import pkitools as t
from tests.tlsdouble import TlsDouble
from tools import engine

UNITS = (pki.UnitTrust("alpha", "alpha.bank.example"), pki.UnitTrust("beta", "beta.bank.example"))


def model(
    key_algorithm: config.KeyAlgorithm = "ECDSA-P256",
    *,
    imported: bool = False,
    organization: str = "Example Bank",
) -> config.Pki:
    root: config.GeneratedRoot | config.ImportedRoot
    if imported:
        root = config.ImportedRoot(source="imported", cert_key="orgRootCert", private_key_secret="orgRootKey")
    else:
        root = config.GeneratedRoot(
            source="generated", common_name="Example Bank Test Root CA", validity_days=3650
        )
    return config.Pki(
        organization=organization,
        key_algorithm=key_algorithm,
        root=root,
        intermediate_validity_days=730,
        leaf_validity_days=90,
    )


@pytest.fixture(scope="module")
def org() -> dict[str, t.Issued]:
    """The generated-root plan for two units, issued as the provider would (ECDSA P-256)."""
    return t.issue_plan(pki.plan(model(), UNITS))


def intermediate(issued: Mapping[str, t.Issued], unit: str) -> t.Issued:
    return issued[pki.intermediate_role(unit)]


def workload(ca: t.Issued, unit: pki.UnitTrust, ns: str = "payments", sa: str = "api") -> t.Issued:
    return t.istio_workload_cert(ca, None, unit.trust_domain, ns, sa)


def basic_constraints(cert: t.Issued) -> x509.Extension[x509.BasicConstraints]:
    return cert.extension(x509.BasicConstraints)


def key_usage(cert: t.Issued) -> x509.Extension[x509.KeyUsage]:
    return cert.extension(x509.KeyUsage)


# ---------------------------------------------------------------------------------------------
# 1. plan()
# ---------------------------------------------------------------------------------------------


def test_plan_puts_the_self_signed_root_first_with_pathlen_one() -> None:
    specs = pki.plan(model(), UNITS)
    root = specs[0]
    assert root.role == pki.root_role()
    assert root.issuer == ""
    assert root.is_ca
    assert root.max_path_length == 1
    assert root.validity_hours == 3650 * 24
    assert set(root.allowed_uses) == {"cert_signing", "crl_signing", "digital_signature"}
    assert [s.role for s in specs].count(pki.root_role()) == 1


def test_plan_has_one_intermediate_ca_per_unit_in_unit_order() -> None:
    specs = pki.plan(model(), UNITS)
    assert [s.role for s in specs[1:]] == [pki.intermediate_role(u.unit) for u in UNITS]


def test_plan_intermediates_are_cas_with_pathlen_zero_ca_uses_and_no_eku() -> None:
    for spec in pki.plan(model(), UNITS)[1:]:
        assert spec.is_ca
        assert spec.max_path_length == 0
        assert set(spec.allowed_uses) == {"cert_signing", "crl_signing", "digital_signature"}
        assert not set(spec.allowed_uses) & set(t.EXTENDED_KEY_USAGES), "a CA must carry no EKU"
        assert spec.issuer == pki.root_role()
        assert spec.validity_hours == 730 * 24


def test_plan_intermediate_names_are_unique_per_unit_and_carry_the_trust_domain() -> None:
    specs = pki.plan(model(), UNITS)[1:]
    assert len({s.common_name for s in specs}) == len(UNITS)
    assert [s.organizational_unit for s in specs] == [u.unit for u in UNITS]
    assert [s.uris for s in specs] == [(f"spiffe://{u.trust_domain}",) for u in UNITS]
    assert all(s.organization == "Example Bank" for s in specs)


def test_plan_with_an_imported_root_has_no_root_spec_but_intermediates_still_name_it_issuer() -> None:
    specs = pki.plan(model(imported=True), UNITS)
    assert pki.root_role() not in {s.role for s in specs}
    assert [s.role for s in specs] == [pki.intermediate_role(u.unit) for u in UNITS]
    assert all(s.issuer == pki.root_role() for s in specs)


def test_plan_is_pure() -> None:
    assert pki.plan(model(), UNITS) == pki.plan(model(), UNITS)


def test_intermediate_common_name_fits_x509_upper_bound_for_the_longest_allowed_names() -> None:
    units = (pki.UnitTrust("u" * 20, "long.example"),)
    specs = pki.plan(model(imported=True, organization="O" * 64), units)
    assert all(len(s.common_name) <= 64 for s in specs)
    t.issue(specs[0], t.issue(t.ca_spec("imported")))


# ---------------------------------------------------------------------------------------------
# 2. The chain built from the plan
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ECDSA-P256", "ECDSA-P384", "RSA-2048"])
def test_a_workload_cert_from_a_unit_intermediate_verifies_against_the_org_root(
    algorithm: config.KeyAlgorithm,
) -> None:
    issued = t.issue_plan(pki.plan(model(algorithm), UNITS[:1]), algorithm=algorithm)
    root, ca = issued[pki.root_role()], intermediate(issued, "alpha")
    leaf = workload(ca, UNITS[0])
    chain = t.verify_chain(leaf, [ca], root)
    assert chain == [leaf.cert, ca.cert, root.cert]


def test_istio_cert_chain_pem_of_intermediate_then_root_verifies_as_a_peer_presents_it(
    org: dict[str, t.Issued],
) -> None:
    """istiod returns leaf + cert-chain.pem (= intermediate + root, as IssuedCa.chain_pem)."""
    root, ca = org[pki.root_role()], intermediate(org, "alpha")
    cert_chain_pem = t.pem(ca.cert, root.cert)
    presented = x509.load_pem_x509_certificates(cert_chain_pem.encode())
    leaf = workload(ca, UNITS[0])
    assert t.verify_chain(leaf, presented, root)[-1] == root.cert


def test_basic_constraints_and_key_usage_are_critical_on_every_cert_of_the_chain(
    org: dict[str, t.Issued],
) -> None:
    leaf = workload(intermediate(org, "alpha"), UNITS[0])
    for cert in (org[pki.root_role()], intermediate(org, "alpha"), intermediate(org, "beta"), leaf):
        assert basic_constraints(cert).critical
        assert key_usage(cert).critical
    assert basic_constraints(leaf).value.ca is False


def test_intermediate_has_key_cert_sign_crl_sign_digital_signature_and_no_eku(
    org: dict[str, t.Issued],
) -> None:
    ca = intermediate(org, "alpha")
    ku = key_usage(ca).value
    assert (ku.key_cert_sign, ku.crl_sign, ku.digital_signature) == (True, True, True)
    assert (ku.key_encipherment, ku.content_commitment) == (False, False)
    assert basic_constraints(ca).value.ca is True
    with pytest.raises(x509.ExtensionNotFound):
        ca.extension(x509.ExtendedKeyUsage)


def test_intermediate_aki_is_the_root_ski_and_its_uri_san_is_not_critical(org: dict[str, t.Issued]) -> None:
    root, ca = org[pki.root_role()], intermediate(org, "alpha")
    root_ski = root.extension(x509.SubjectKeyIdentifier).value.digest
    assert ca.extension(x509.AuthorityKeyIdentifier).value.key_identifier == root_ski
    assert ca.extension(x509.SubjectKeyIdentifier).value.digest
    san = ca.extension(x509.SubjectAlternativeName)
    assert not san.critical
    assert t.uris_of(ca.cert) == ["spiffe://alpha.bank.example"]
    with pytest.raises(x509.ExtensionNotFound):
        root.extension(x509.AuthorityKeyIdentifier)


def test_workload_cert_looks_like_istiods(org: dict[str, t.Issued]) -> None:
    ca = intermediate(org, "alpha")
    leaf = workload(ca, UNITS[0], "payments", "api")
    assert len(leaf.cert.subject) == 0
    san = leaf.extension(x509.SubjectAlternativeName)
    assert san.critical
    assert t.uris_of(leaf.cert) == ["spiffe://alpha.bank.example/ns/payments/sa/api"]
    ku = key_usage(leaf).value
    assert (ku.digital_signature, ku.key_encipherment, ku.key_cert_sign) == (True, True, False)
    eku = leaf.extension(x509.ExtendedKeyUsage)
    assert not eku.critical
    assert list(eku.value) == [t.EXTENDED_KEY_USAGES["server_auth"], t.EXTENDED_KEY_USAGES["client_auth"]]
    assert leaf.cert.not_valid_after_utc <= ca.cert.not_valid_after_utc


# ---------------------------------------------------------------------------------------------
# 3. The pathlen finding
# ---------------------------------------------------------------------------------------------


def sub_ca_leaf(ca: t.Issued, unit: pki.UnitTrust) -> tuple[t.Issued, t.Issued]:
    """A rogue sub-CA signed by the unit intermediate's key, and a workload leaf under it."""
    sub = t.issue(t.ca_spec("rogue-sub-ca", issuer=pki.intermediate_role(unit.unit)), ca)
    return sub, workload(sub, unit)


def test_the_emulated_provider_encoding_drops_pathlen_zero_on_the_intermediate(
    org: dict[str, t.Issued],
) -> None:
    """plan() asks max_path_length=0. An emulation, not the provider: tests/pkitools.py
    provider_path_length encodes what the provider's source does (it never sets Go's
    MaxPathLenZero; Refs there), so the intermediate says CA:TRUE with NO pathLenConstraint.
    Values >= 1 (the root's 1) are emitted."""
    spec = intermediate(org, "alpha").spec
    assert spec is not None and spec.max_path_length == 0
    assert basic_constraints(intermediate(org, "alpha")).value.path_length is None
    assert basic_constraints(org[pki.root_role()]).value.path_length == 1
    assert t.provider_path_length(True, 0) is None
    assert t.provider_path_length(True, 0, max_path_len_zero=True) == 0


def test_without_pathlen_an_intermediate_can_mint_a_sub_ca_when_the_root_does_not_constrain() -> None:
    """What the missing pathlen allows: with an imported org root that carries no pathlen (common
    for offline roots), a sub-CA signed by the unit intermediate and a leaf under it are ACCEPTED
    by real path validation. With an explicit pathlen:0 on the intermediate they are REFUSED."""
    imported_root = t.issue(t.ca_spec("offline-root", max_path_length=None, validity_hours=24 * 3650))
    specs = pki.plan(model(imported=True), UNITS[:1])
    issued = t.issue_plan(specs, root=imported_root)
    ca = intermediate(issued, "alpha")
    assert basic_constraints(ca).value.path_length is None
    sub, leaf = sub_ca_leaf(ca, UNITS[0])
    assert t.verify_chain(leaf, [sub, ca], imported_root) == [
        leaf.cert,
        sub.cert,
        ca.cert,
        imported_root.cert,
    ]

    pathlen0 = t.issue(specs[0], imported_root, max_path_len_zero=True)
    assert basic_constraints(pathlen0).value.path_length == 0
    sub0, leaf0 = sub_ca_leaf(pathlen0, UNITS[0])
    with pytest.raises(VerificationError, match="path length"):
        t.verify_chain(leaf0, [sub0, pathlen0], imported_root)
    assert t.verify_chain(workload(pathlen0, UNITS[0]), [pathlen0], imported_root)


def test_fails_a_sub_ca_under_the_intermediate_because_the_generated_root_has_pathlen_one(
    org: dict[str, t.Issued],
) -> None:
    """With the generated root the gap is closed one level up: root pathlen:1 allows only one CA
    below it, so root -> intermediate -> sub-CA -> leaf is refused even without pathlen:0."""
    ca = intermediate(org, "alpha")
    sub, leaf = sub_ca_leaf(ca, UNITS[0])
    with pytest.raises(VerificationError, match="path length"):
        t.verify_chain(leaf, [sub, ca], org[pki.root_role()])


# ---------------------------------------------------------------------------------------------
# 4. What must not verify, and what the one org root does not separate
# ---------------------------------------------------------------------------------------------


def test_fails_a_unit_b_workload_cert_against_unit_a_intermediate(org: dict[str, t.Issued]) -> None:
    leaf_b = workload(intermediate(org, "beta"), UNITS[1])
    ca_a = intermediate(org, "alpha")
    with pytest.raises(VerificationError):
        t.verify_chain(leaf_b, [], ca_a)
    with pytest.raises(VerificationError):
        t.verify_chain(leaf_b, [ca_a], org[pki.root_role()])


def test_workloads_of_both_units_verify_against_the_one_org_root_so_separation_needs_spiffe_authz(
    org: dict[str, t.Issued],
) -> None:
    """One org root trusts every unit's intermediate: a peer trusting the org root (root-cert.pem)
    accepts beta's workload as readily as alpha's, whatever intermediates it presents. The CA
    does not separate units; trust-domain separation must come from authorizing the SPIFFE ID
    (AuthorizationPolicy principals / trust domain checks), which differs per unit."""
    root = org[pki.root_role()]
    leaf_a = workload(intermediate(org, "alpha"), UNITS[0])
    leaf_b = workload(intermediate(org, "beta"), UNITS[1])
    both = [intermediate(org, "alpha"), intermediate(org, "beta")]
    assert t.verify_chain(leaf_a, both, root)[1] == intermediate(org, "alpha").cert
    assert t.verify_chain(leaf_b, both, root)[1] == intermediate(org, "beta").cert
    trust_domains = {re.match(r"spiffe://([^/]+)/", t.uris_of(c.cert)[0]).group(1) for c in (leaf_a, leaf_b)}  # type: ignore[union-attr]
    assert trust_domains == {u.trust_domain for u in UNITS}


def test_fails_a_workload_cert_from_a_foreign_root_even_with_identical_names(
    org: dict[str, t.Issued],
) -> None:
    foreign = t.issue_plan(pki.plan(model(), UNITS))
    foreign_ca = intermediate(foreign, "alpha")
    assert foreign_ca.cert.subject == intermediate(org, "alpha").cert.subject
    leaf = workload(foreign_ca, UNITS[0])
    with pytest.raises(VerificationError):
        t.verify_chain(leaf, [foreign_ca], org[pki.root_role()])
    with pytest.raises(VerificationError):
        t.verify_chain(leaf, [intermediate(org, "alpha")], org[pki.root_role()])
    assert t.verify_chain(leaf, [foreign_ca], foreign[pki.root_role()])


def test_fails_an_expired_intermediate(org: dict[str, t.Issued]) -> None:
    """The provider does not clamp a cert to its CA, so a leaf can outlive an expired intermediate;
    path validation refuses it. istiod itself refuses to sign with an expired CA."""
    root = org[pki.root_role()]
    long_ago = dt.datetime.now(t.UTC) - dt.timedelta(days=800)
    spec = intermediate(org, "alpha").spec
    assert spec is not None
    expired = t.issue(spec, root, now=long_ago)  # 730 days from 800 days ago
    assert expired.cert.not_valid_after_utc < dt.datetime.now(t.UTC)
    leaf_spec = pki.CertSpec(
        role="leaf",
        common_name="",
        organization="",
        organizational_unit="",
        is_ca=False,
        max_path_length=None,
        allowed_uses=("digital_signature", "key_encipherment", "server_auth", "client_auth"),
        validity_hours=24,
        issuer=spec.role,
        uris=(t.spiffe_id("alpha.bank.example", "payments", "api"),),
    )
    leaf = t.issue(leaf_spec, expired, set_subject_key_id=False)
    assert leaf.extension(x509.SubjectAlternativeName).critical
    assert leaf.cert.not_valid_after_utc > dt.datetime.now(t.UTC)
    with pytest.raises(VerificationError, match="not valid at validation time"):
        t.verify_chain(leaf, [expired], root)
    with pytest.raises(ValueError, match="expired"):
        workload(expired, UNITS[0])


def test_fails_a_leaf_whose_ca_lacks_key_cert_sign(org: dict[str, t.Issued]) -> None:
    root = org[pki.root_role()]
    no_kcs = t.issue(
        t.ca_spec(
            "no-keycertsign", issuer=pki.root_role(), allowed_uses=("digital_signature", "crl_signing")
        ),
        root,
    )
    assert key_usage(no_kcs).value.key_cert_sign is False
    with pytest.raises(VerificationError, match="keyCertSign"):
        t.verify_chain(workload(no_kcs, UNITS[0]), [no_kcs], root)


def test_fails_an_intermediate_with_a_server_only_eku_for_mtls_client_certs(org: dict[str, t.Issued]) -> None:
    """Why CA_USES has no EKU: an EKU on a CA constrains every leaf below it."""
    root = org[pki.root_role()]
    server_only = t.issue(
        t.ca_spec("server-only", issuer=pki.root_role(), allowed_uses=(*pki.CA_USES, "server_auth")),
        root,
    )
    with pytest.raises(VerificationError):
        t.verify_chain(workload(server_only, UNITS[0]), [server_only], root)


# ---------------------------------------------------------------------------------------------
# 5. The Pki component under the mock engine
# ---------------------------------------------------------------------------------------------

PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
SELF_SIGNED = "tls:index/selfSignedCert:SelfSignedCert"
CSR = "tls:index/certRequest:CertRequest"
LOCALLY_SIGNED = "tls:index/locallySignedCert:LocallySignedCert"
IMPORTED_CERT = engine.mock_pem("CERTIFICATE", "imported-root")
IMPORTED_KEY = engine.mock_pem("PRIVATE KEY", "imported-root")


def run_pki(pki_model: config.Pki, mocks: engine.StateMocks | None = None, **kwargs: Any) -> engine.Run:
    def program() -> dict[str, Any]:
        component = pki.Pki("pki", pki.PkiArgs(pki_model, UNITS, **kwargs))
        outputs: dict[str, Any] = {"root": component.root_cert_pem}
        for unit, ca in component.intermediates.items():
            outputs |= {f"{unit}-key": ca.key_pem, f"{unit}-chain": ca.chain_pem, f"{unit}-cert": ca.cert_pem}
        return outputs

    return engine.run(program, mocks=mocks)


@pytest.fixture(scope="module")
def generated_run() -> engine.Run:
    return run_pki(model())


def test_component_registers_a_root_and_one_csr_and_signed_cert_per_unit(generated_run: engine.Run) -> None:
    run = generated_run
    assert [r.name for r in run.by_type(SELF_SIGNED)] == ["pki-root"]
    assert {r.name for r in run.by_type(CSR)} == {f"pki-{pki.intermediate_role(u.unit)}-csr" for u in UNITS}
    assert {r.name for r in run.by_type(LOCALLY_SIGNED)} == {
        f"pki-{pki.intermediate_role(u.unit)}" for u in UNITS
    }
    assert len(run.by_type(PRIVATE_KEY)) == 1 + len(UNITS)
    component = run.get("pki")
    assert component.type == "cpaas:pki:Pki"
    assert all(r.parent == component.urn for r in run.registrations if r.custom)


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("ECDSA-P256", {"algorithm": "ECDSA", "ecdsaCurve": "P256"}),
        ("ECDSA-P384", {"algorithm": "ECDSA", "ecdsaCurve": "P384"}),
        ("RSA-3072", {"algorithm": "RSA", "rsaBits": 3072}),
    ],
)
def test_private_keys_use_the_configured_algorithm_never_the_provider_default_p224(
    algorithm: config.KeyAlgorithm, expected: dict[str, Any]
) -> None:
    run = run_pki(model(algorithm))
    for key in run.by_type(PRIVATE_KEY):
        assert key.inputs == expected
        assert key.inputs.get("ecdsaCurve") != "P224"


def test_root_cert_inputs_match_the_plan(generated_run: engine.Run) -> None:
    spec = pki.plan(model(), UNITS)[0]
    root = generated_run.get("pki-root")
    assert root.inputs == {
        "allowedUses": list(spec.allowed_uses),
        "isCaCertificate": True,
        "maxPathLength": spec.max_path_length,
        "privateKeyPem": engine.SECRET,
        "setSubjectKeyId": True,
        "subject": {
            "commonName": spec.common_name,
            "organization": spec.organization,
            "organizationalUnit": spec.organizational_unit,
        },
        "validityPeriodHours": spec.validity_hours,
        "earlyRenewalHours": spec.early_renewal_hours,
    }
    assert generated_run.get("pki-root-key").urn in root.dependencies


def test_intermediate_csr_and_signed_cert_inputs_match_the_plan(generated_run: engine.Run) -> None:
    # Under StateMocks every PEM is a stand-in: what is checked is which output feeds which input.
    root_cert = generated_run.outputs["root"]
    for spec in pki.plan(model(), UNITS)[1:]:
        csr = generated_run.get(f"pki-{spec.role}-csr")
        assert csr.inputs == {
            "privateKeyPem": engine.SECRET,
            "subject": {
                "commonName": spec.common_name,
                "organization": spec.organization,
                "organizationalUnit": spec.organizational_unit,
            },
            "uris": list(spec.uris),
        }
        cert = generated_run.get(f"pki-{spec.role}")
        assert cert.inputs == {
            "allowedUses": list(spec.allowed_uses),
            "caCertPem": root_cert,
            "caPrivateKeyPem": engine.SECRET,
            "certRequestPem": engine.mock_pem("CERTIFICATE REQUEST", f"{CSR}::pki-{spec.role}-csr"),
            "isCaCertificate": True,
            "maxPathLength": 0,
            "setSubjectKeyId": True,
            "validityPeriodHours": spec.validity_hours,
            "earlyRenewalHours": spec.early_renewal_hours,
        }
        assert generated_run.get("pki-root").urn in cert.dependencies
        assert csr.urn in cert.dependencies


def _plain_strings(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _plain_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _plain_strings(v)]
    return [value] if isinstance(value, str) else []


@pytest.mark.parametrize("imported", [False, True], ids=["generated-root", "imported-root"])
def test_private_keys_reach_dependent_resources_only_as_secrets(imported: bool) -> None:
    kwargs = {"imported_root_cert": IMPORTED_CERT, "imported_root_key": IMPORTED_KEY} if imported else {}
    run = run_pki(model(imported=imported), **kwargs)
    for reg in run.by_type(CSR) + run.by_type(SELF_SIGNED):
        assert reg.inputs["privateKeyPem"] == engine.SECRET
    for reg in run.by_type(LOCALLY_SIGNED):
        assert reg.inputs["caPrivateKeyPem"] == engine.SECRET
    leaked = [(r.name, s) for r in run.registrations for s in _plain_strings(r.inputs) if "PRIVATE KEY" in s]
    assert leaked == []
    assert all("PRIVATE KEY" not in s for s in _plain_strings(run.outputs))


def test_issued_ca_key_pem_is_a_secret_output_and_certs_are_not(generated_run: engine.Run) -> None:
    assert {f"{u.unit}-key" for u in UNITS} <= generated_run.secret_outputs
    assert all(generated_run.outputs[f"{u.unit}-key"] == engine.SECRET for u in UNITS)
    public = {"root"} | {f"{u.unit}-{k}" for u in UNITS for k in ("chain", "cert")}
    assert not public & generated_run.secret_outputs


def test_issued_ca_key_pem_is_secret_inside_the_program() -> None:
    seen: dict[str, bool] = {}

    def program() -> dict[str, Any]:
        component = pki.Pki("pki", pki.PkiArgs(model(), UNITS))

        async def check(unit: str, out: pulumi.Output[str]) -> None:
            seen[unit] = await out.is_secret()

        return {
            f"{unit}-checked": pulumi.Output.from_input(check(unit, ca.key_pem))
            for unit, ca in component.intermediates.items()
        }

    engine.run(program)
    assert seen == {u.unit: True for u in UNITS}


def test_chain_pem_is_the_intermediate_then_the_root() -> None:
    """With the certificates the tls double issues (tests/tlsdouble.py): each unit's chain output
    is its intermediate, then the self-signed root that signed it, which is the root output."""
    run = run_pki(model(), mocks=TlsDouble())
    specs = {spec.role: spec for spec in pki.plan(model(), UNITS)}
    [root] = x509.load_pem_x509_certificates(run.outputs["root"].encode())
    root.verify_directly_issued_by(root)
    assert _common_name(root) == specs[pki.root_role()].common_name
    for unit in UNITS:
        [cert] = x509.load_pem_x509_certificates(run.outputs[f"{unit.unit}-cert"].encode())
        assert x509.load_pem_x509_certificates(run.outputs[f"{unit.unit}-chain"].encode()) == [cert, root]
        cert.verify_directly_issued_by(root)
        assert _common_name(cert) == specs[pki.intermediate_role(unit.unit)].common_name


def _common_name(cert: x509.Certificate) -> object:
    return cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value


def test_imported_root_registers_no_root_resources_and_signs_with_the_imported_cert() -> None:
    run = run_pki(model(imported=True), imported_root_cert=IMPORTED_CERT, imported_root_key=IMPORTED_KEY)
    assert run.by_type(SELF_SIGNED) == []
    assert len(run.by_type(PRIVATE_KEY)) == len(UNITS)
    for reg in run.by_type(LOCALLY_SIGNED):
        assert reg.inputs["caCertPem"] == IMPORTED_CERT
    assert run.outputs["root"] == IMPORTED_CERT
    assert run.outputs["alpha-chain"].endswith(IMPORTED_CERT)


def test_fails_an_imported_root_without_its_key() -> None:
    with pytest.raises(ValueError, match="imported_root_cert and imported_root_key"):
        run_pki(model(imported=True), imported_root_cert=IMPORTED_CERT)


# ---------------------------------------------------------------------------------------------
# 6. Renewal: early, with the old and the new copy trusted alike
# ---------------------------------------------------------------------------------------------

UNIT_WITH_LEAVES = pki.UnitTrust(
    "alpha", "alpha.bank.example", egress=True, apps=(("web", "web.apps.bank.example"),)
)


def test_every_certificate_of_the_plan_is_renewed_when_a_third_of_its_life_remains() -> None:
    specs = pki.plan(model(), (UNIT_WITH_LEAVES,))
    assert {s.role for s in specs} == {
        pki.root_role(),
        pki.intermediate_role("alpha"),
        pki.egress_role("alpha"),
        pki.app_role("alpha", "web"),
    }
    for spec in specs:
        assert spec.early_renewal_hours == spec.validity_hours // 3, spec.role
    # Prod's leaves (90 days) are renewed 30 days before they expire.
    assert {s.early_renewal_hours for s in specs if not s.is_ca} == {30 * 24}


@pytest.mark.parametrize("days", [1, 2, 7, 30, 90, 825, 3650, 7300])
def test_a_renewal_window_never_spans_the_whole_life(days: int) -> None:
    """terraform-provider-tls marks a certificate ready for renewal on every plan when
    early_renewal_hours >= validity_period_hours (attribute_plan_modifier_bool/default_value.go),
    so each update would replace it."""
    assert 0 < pki.renewal_hours(days * 24) < days * 24


def test_component_gives_every_certificate_its_renewal_window() -> None:
    run = engine.run(lambda: {"pki": pki.Pki("pki", pki.PkiArgs(model(), (UNIT_WITH_LEAVES,))).root_cert_pem})
    specs = {f"pki-{s.role}" if s.issuer else "pki-root": s for s in pki.plan(model(), (UNIT_WITH_LEAVES,))}
    certs = run.by_type(SELF_SIGNED) + run.by_type(LOCALLY_SIGNED)
    assert {r.name for r in certs} == set(specs)
    for reg in certs:
        assert reg.inputs["earlyRenewalHours"] == specs[reg.name].early_renewal_hours, reg.name


def renewed(old: t.Issued, issuer: t.Issued | None) -> t.Issued:
    """What a renewal issues: the same spec re-signed over the same key (the tls PrivateKey and
    CertRequest are not replaced; only the certificate resource is)."""
    assert old.spec is not None
    return t.issue(old.spec, issuer, key=old.key)


def at_renewal_point(spec: pki.CertSpec) -> dt.datetime:
    """When a certificate issued now-ago enters its renewal window today."""
    return dt.datetime.now(t.UTC) - dt.timedelta(hours=spec.validity_hours - spec.early_renewal_hours)


def test_a_renewed_intermediate_and_its_old_copy_each_verify_leaves_the_other_signed(
    org: dict[str, t.Issued],
) -> None:
    """Between the update and istiod reloading cacerts, sidecars present leaves chained to the old
    copy while the BIG-IP's mesh CA file holds the new one, and the other way round."""
    root = org[pki.root_role()]
    spec = intermediate(org, "alpha").spec
    assert spec is not None
    old = t.issue(spec, root, now=at_renewal_point(spec))
    new = renewed(old, root)
    assert old.cert.not_valid_after_utc - dt.datetime.now(t.UTC) > dt.timedelta(
        hours=spec.early_renewal_hours - 1
    )
    # The egress iRule binds the trust domain to the issuer name: a renewal keeps it.
    assert new.cert.subject == old.cert.subject
    assert new.extension(x509.SubjectKeyIdentifier).value == old.extension(x509.SubjectKeyIdentifier).value
    for signer, other in ((old, new), (new, old)):
        leaf = workload(signer, UNITS[0])
        assert leaf.cert.issuer == new.cert.subject
        assert t.verify_chain(leaf, [other], root)[1] == other.cert
        assert t.verify_chain(leaf, [signer], root)[1] == signer.cert


def test_a_renewed_root_and_its_old_copy_each_verify_chains_through_the_other(
    org: dict[str, t.Issued],
) -> None:
    spec = org[pki.root_role()].spec
    assert spec is not None
    old = t.issue(spec, None, now=at_renewal_point(spec))
    new = renewed(old, None)
    ca_spec = intermediate(org, "alpha").spec
    assert ca_spec is not None
    for signer, other in ((old, new), (new, old)):
        ca = t.issue(ca_spec, signer)
        leaf = workload(ca, UNITS[0])
        assert t.verify_chain(leaf, [ca], other)[-1] == other.cert


def istiod_pod_annotations(ca: pki.IssuedCa) -> Any:
    def program() -> None:
        mesh.Mesh("m", mesh.MeshArgs(config.Mesh(trust_domain="alpha.bank.example"), ca, "alpha"))

    return engine.run(program).get("m-istiod").inputs["values"].get("podAnnotations")


def plain_ca(cert: str, root: str, key: str = "key") -> pki.IssuedCa:
    return pki.IssuedCa(
        cert_pem=pulumi.Output.from_input(cert),
        key_pem=pulumi.Output.secret(key),
        chain_pem=pulumi.Output.from_input(cert + root),
        root_pem=pulumi.Output.from_input(root),
        subject_rdns=("O=Example Bank", "OU=alpha", "CN=alpha mesh intermediate CA"),
    )


def test_istiod_is_rolled_when_its_ca_certificate_or_the_root_changes() -> None:
    """istiod 1.30.3 reloads a new intermediate from the mounted cacerts, but refuses a changed
    root-cert.pem unless ISTIO_MULTIROOT_MESH is on, and then keeps signing with the old copy
    until it restarts (pilot/pkg/bootstrap/istio_ca.go, handleEvent). The pod template carries a
    digest of the public cacerts files, so the Helm upgrade rolls istiod whenever they change."""
    first = istiod_pod_annotations(plain_ca("int-1", "root-1"))
    assert first == {mesh_digest_key(): hashlib.sha256(b"int-1root-1").hexdigest()}
    assert istiod_pod_annotations(plain_ca("int-2", "root-1")) != first
    assert istiod_pod_annotations(plain_ca("int-1", "root-2")) != first
    # The key is a secret and never goes into the digest (it changes only with the certificate).
    assert istiod_pod_annotations(plain_ca("int-1", "root-1", key="other")) == first


def mesh_digest_key() -> str:
    return mesh.CACERTS_DIGEST_ANNOTATION
