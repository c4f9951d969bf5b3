"""The egress authorisation iRule, run in Tcl against stubbed BIG-IP commands (tests/tclstubs.py)
with real certificates: Istio-style workload leaves and hand-made ones from a mesh CA."""

from __future__ import annotations

import ipaddress
import subprocess
import tkinter
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from components import config
from components.bigip import egress, irules
from tests import pkitools, tclstubs

TD = "prod.example"
NAMES = egress.Names("cpaas-onprem-syd")
DG = NAMES.data_group
ALLOW = (
    config.EgressAllow(namespace="bookinfo"),
    config.EgressAllow(namespace="payments", service_accounts=("worker", "api"), snat_address="10.30.17.201"),
    config.EgressAllow(namespace="reports", snat_address="10.30.17.202"),
)
CLIENT = ("10.244.3.9", 51515)


# The per-app SNAT pool a namespace with its own address gets.
snat_pool = NAMES.app_snat_pool


# The SNAT pools on the device: one per per-app address, holding that address alone.
SNAT_POOLS = {snat_pool(a.namespace): (str(a.snat_address),) for a in ALLOW if a.snat_address is not None}


@dataclass(frozen=True)
class Pki:
    root: pkitools.Issued
    mesh: pkitools.Issued  # the unit's intermediate: istiod's plugged-in CA


MESH = pkitools.ca_spec("mesh", issuer="root")
ISSUER = MESH.subject_rdns  # ("O=Test Org", "OU=tests", "CN=Test Org mesh")


@pytest.fixture(scope="module")
def pki() -> Pki:
    root = pkitools.issue(pkitools.ca_spec("root"))
    return Pki(root=root, mesh=pkitools.issue(MESH, root))


@pytest.fixture(scope="module")
def irule() -> tclstubs.IRule:
    records = dict(irules.data_group_records(ALLOW, snat_pool))
    return tclstubs.IRule(irules.egress_authz(TD, DG, ISSUER), {DG: records}, snat_pools=SNAT_POOLS)


def spiffe(namespace: str, account: str, trust_domain: str = TD) -> str:
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{account}"


def sans(*entries: str) -> list[x509.GeneralName]:
    """SAN entries written as OpenSSL prints them: "URI:...", "DNS:...", "IP Address:...", "email:..."."""
    kinds = {
        "URI": x509.UniformResourceIdentifier,
        "DNS": x509.DNSName,
        "email": x509.RFC822Name,
        "IP Address": lambda v: x509.IPAddress(ipaddress.ip_address(v)),
    }
    names = []
    for entry in entries:
        kind, value = entry.split(":", 1)
        names.append(kinds[kind](value))
    return names


def leaf(pki: Pki, *entries: str, **kwargs: object) -> x509.Certificate:
    return pkitools.client_leaf(pki.mesh, sans(*entries), **kwargs).cert  # type: ignore[arg-type]


def workload(pki: Pki, namespace: str, account: str, trust_domain: str = TD) -> x509.Certificate:
    return pkitools.istio_workload_cert(
        pki.mesh, trust_domain=trust_domain, namespace=namespace, service_account=account
    ).cert


def connect(irule: tclstubs.IRule, cert: x509.Certificate | None, **kwargs: object) -> tclstubs.Outcome:
    outcome = irule.connect(cert, client=CLIENT, **kwargs)  # type: ignore[arg-type]
    assert outcome.error is None, outcome.error
    return outcome


def assert_allowed(outcome: tclstubs.Outcome, identity: str, snat: str | None = None) -> None:
    assert outcome.allowed, outcome.logs
    assert outcome.events == tclstubs.DEFAULT_EVENTS
    # Never an address of the iRule's choosing: the app's own SNAT pool, or the virtual server's.
    assert outcome.snat_calls == ()
    assert outcome.snatpool_calls == ((snat,) if snat else ())
    assert outcome.logs == (
        f"egress-authz allow id={identity} snat={snat or 'virtual-server'} client={CLIENT[0]}:{CLIENT[1]}",
    )


def assert_refused(outcome: tclstubs.Outcome, reason: str, identity: str = "-") -> None:
    assert outcome.rejected and not outcome.allowed
    assert "LB_SELECTED" not in outcome.events, "a refused handshake must not reach load balancing"
    assert outcome.snat_calls == () and outcome.snatpool_calls == ()
    assert outcome.logs == (
        f'egress-authz deny id={identity} reason="{reason}" client={CLIENT[0]}:{CLIENT[1]}',
    )


# ---------------------------------------------------------------------------------------------
# Allowed
# ---------------------------------------------------------------------------------------------


def test_an_istio_workload_certificate_with_empty_subject_and_critical_san_is_allowed(pki, irule):
    cert = workload(pki, "bookinfo", "productpage")
    assert len(cert.subject) == 0
    # The header line the seed's fixed-offset findstr tripped over.
    assert "X509v3 Subject Alternative Name: critical\n" in tclstubs.extensions_text(cert)
    assert_allowed(connect(irule, cert), spiffe("bookinfo", "productpage"))


def test_a_certificate_with_a_subject_and_non_critical_san_is_allowed(pki, irule):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "productpage")])
    cert = leaf(pki, f"URI:{spiffe('bookinfo', 'productpage')}", subject=subject)
    text = tclstubs.extensions_text(cert)
    assert "X509v3 Subject Alternative Name: \n" in text and "Name: critical" not in text
    assert_allowed(connect(irule, cert), spiffe("bookinfo", "productpage"))


@pytest.mark.parametrize(
    "entries",
    [
        ("URI", "DNS:productpage.bookinfo.svc"),
        ("DNS:productpage.bookinfo.svc", "URI"),
        ("DNS:a.example", "IP Address:10.1.2.3", "URI", "email:ops@example.com", "IP Address:2001:db8::1"),
    ],
    ids=["uri-then-dns", "dns-then-uri", "with-ip-and-email"],
)
def test_dns_ip_and_email_entries_beside_the_one_uri_are_allowed_in_any_order(pki, irule, entries):
    identity = spiffe("bookinfo", "reviews")
    cert = leaf(pki, *(f"URI:{identity}" if e == "URI" else e for e in entries))
    assert_allowed(connect(irule, cert), identity)


@pytest.mark.parametrize("account", ["api", "worker"])
def test_a_restricted_namespace_admits_its_listed_service_accounts_with_their_snat(pki, irule, account):
    assert_allowed(
        connect(irule, workload(pki, "payments", account)),
        spiffe("payments", account),
        snat=snat_pool("payments"),
    )


def test_a_per_app_snat_pool_holding_only_that_apps_address_is_applied_in_lb_selected(pki, irule):
    outcome = connect(irule, workload(pki, "reports", "default"))
    assert outcome.snatpool == snat_pool("reports")
    assert SNAT_POOLS[outcome.snatpool] == ("10.30.17.202",)
    assert_allowed(outcome, spiffe("reports", "default"), snat=snat_pool("reports"))


def test_without_a_snat_address_the_virtual_servers_snat_pool_applies(pki, irule):
    outcome = connect(irule, workload(pki, "bookinfo", "details"))
    assert outcome.allowed and outcome.snat_calls == () and outcome.snatpool_calls == ()


def test_no_two_apps_ever_leave_with_the_same_per_app_address(pki, irule):
    seen: dict[str, str] = {}
    for entry in ALLOW:
        outcome = connect(irule, workload(pki, entry.namespace, "api"))
        for pool in outcome.snatpool_calls:
            for address in SNAT_POOLS[pool]:
                assert seen.setdefault(address, entry.namespace) == entry.namespace


def test_fails_closed_when_the_records_snat_pool_does_not_exist(pki):
    missing = tclstubs.IRule(
        irules.egress_authz(TD, DG, ISSUER), {DG: {"reports": f"*|{snat_pool('reports')}"}}, snat_pools={}
    )
    outcome = missing.connect(workload(pki, "reports", "default"))
    assert outcome.error and "reports" in outcome.error and not outcome.allowed


def test_fails_without_the_openssl_cli_instead_of_falling_back_to_an_in_repo_rendering(
    pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """X509::extensions is openssl's text on the BIG-IP; the tests hold the iRule to that text, so a
    machine without openssl fails them (CI checks for it first, .ci/run) instead of testing against
    tclstubs.render_extensions, our own rendering of the same format."""
    monkeypatch.setenv("PATH", "/nonexistent")
    tclstubs._openssl_extensions.cache_clear()
    with pytest.raises(RuntimeError, match=r"^the iRule tests need the openssl CLI"):
        tclstubs.extensions_text(workload(pki, "bookinfo", "productpage"))


@pytest.mark.parametrize("use_openssl", [True, False], ids=["openssl-text", "cryptography-text"])
def test_the_decision_is_the_same_for_openssl_and_cryptography_extension_text(pki, irule, use_openssl):
    good, evil = workload(pki, "payments", "api"), workload(pki, "payments", "intruder")
    for cert, allowed in ((good, True), (evil, False)):
        text = tclstubs.extensions_text(cert, use_openssl=use_openssl)
        assert connect(irule, cert, extensions=text).allowed is allowed


def test_the_cryptography_rendering_matches_openssl_text(pki):
    certs = [
        workload(pki, "bookinfo", "productpage"),
        leaf(
            pki,
            "DNS:a.example",
            f"URI:{spiffe('a', 'b')}",
            "IP Address:10.0.0.1",
            "IP Address:2001:db8::1",
            "email:x@example.com",
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]),
        ),
        pkitools.client_leaf(pki.mesh, None, bare=True).cert,
        pki.mesh.cert,
    ]
    for cert in certs:
        assert tclstubs.render_extensions(cert) == tclstubs.extensions_text(cert, use_openssl=True)


# ---------------------------------------------------------------------------------------------
# Refused
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "second",
    [spiffe("bookinfo", "reviews"), spiffe("evil", "x"), "https://example.com/"],
)
def test_fails_with_two_uri_sans(pki, irule, second):
    first = spiffe("bookinfo", "productpage")
    outcome = connect(irule, leaf(pki, f"URI:{first}", f"URI:{second}"))
    assert_refused(outcome, "expected exactly one URI SAN, found 2", identity=f"{first} {second}")


def test_fails_with_only_dns_sans(pki, irule):
    assert_refused(
        connect(irule, leaf(pki, "DNS:productpage.bookinfo.svc")), "expected exactly one URI SAN, found 0"
    )


def test_fails_without_a_san_extension(pki, irule):
    cert = pkitools.client_leaf(pki.mesh, None).cert
    assert "Subject Alternative Name" not in tclstubs.extensions_text(cert)
    assert_refused(connect(irule, cert), "no subject alternative name")


def test_fails_for_a_certificate_without_extensions(pki, irule):
    cert = pkitools.client_leaf(pki.mesh, None, bare=True).cert
    assert tclstubs.extensions_text(cert) == "(no extensions)"
    assert_refused(connect(irule, cert), "no subject alternative name")


@pytest.mark.parametrize("namespace", ["bookinfo-evil", "xbookinfo", "bookinfox", "bookinfo.evil", "default"])
def test_fails_for_a_namespace_off_the_allow_list_including_look_alikes(pki, irule, namespace):
    identity = spiffe(namespace, "productpage")
    reason = "not a SPIFFE workload ID" if "." in namespace else "namespace not allowed"
    assert_refused(connect(irule, leaf(pki, f"URI:{identity}")), reason, identity)


@pytest.mark.parametrize(
    "trust_domain",
    [
        "other.example",
        "evil-prod.example",
        "xprod.example",
        "prod.example.evil",
        "prod.exampl",
        "PROD.example",
        "prod-example",
        "cluster.local",
    ],
)
def test_fails_for_another_trust_domain_including_look_alikes(pki, irule, trust_domain):
    identity = spiffe("bookinfo", "productpage", trust_domain)
    assert_refused(
        connect(irule, workload(pki, "bookinfo", "productpage", trust_domain)),
        "foreign trust domain",
        identity,
    )


@pytest.mark.parametrize(
    "identity",
    [
        f"spiffe://{TD}/ns/bookinfo/sa/productpage/extra",
        f"spiffe://{TD}/ns//sa/productpage",
        f"spiffe://{TD}/ns/bookinfo/sa/",
        f"spiffe://{TD}/ns/bookinfo/sa/productpage/",
        f"spiffe://{TD}//ns/bookinfo/sa/productpage",
        f"spiffe://{TD}/extra/ns/bookinfo/sa/productpage",
        f"spiffe://{TD}/ns/bookinfo/sa/productpage?x=1",
        f"spiffe://{TD}/ns/bookinfo/sa/productpage#x",
        f"spiffe://{TD}/ns/%62ookinfo/sa/productpage",
        f"spiffe://{TD}/ns/bookinfo/sa/..",
        f"spiffe://{TD}/ns/../sa/productpage",
        f"spiffe://{TD}/ns/bookinfo/../bookinfo/sa/productpage",
        f"spiffe://{TD}/ns/bookinfo",
        f"spiffe://{TD}/sa/productpage/ns/bookinfo",
        f"spiffe://{TD}/ns/BookInfo/sa/productpage",
        f"spiffe://{TD}/ns/-bookinfo/sa/productpage",
        f"spiffe://{TD}/ns/bookinfo/sa/{'a' * 64}",
        f"SPIFFE://{TD}/ns/bookinfo/sa/productpage",
        f"spiffe:/{TD}/ns/bookinfo/sa/productpage",
        f"https://{TD}/ns/bookinfo/sa/productpage",
        f"spiffe://user@{TD}/ns/bookinfo/sa/productpage",
        f"spiffe://{TD}:443/ns/bookinfo/sa/productpage",
        f"spiffe://td/ns/bookinfo/sa/x/extra/spiffe://{TD}/ns/bookinfo/sa/x",
    ],
)
def test_fails_for_a_malformed_spiffe_id(pki, irule, identity):
    outcome = connect(irule, leaf(pki, f"URI:{identity}"))
    assert outcome.rejected and not outcome.allowed
    assert outcome.logs[0].startswith(f"egress-authz deny id={identity} reason=")
    assert "namespace not allowed" not in outcome.logs[0]


@pytest.mark.parametrize("code", [2, 10, 20, 23])
def test_fails_when_ssl_verify_result_is_not_zero(pki, irule, code):
    identity = spiffe("bookinfo", "productpage")
    outcome = connect(irule, workload(pki, "bookinfo", "productpage"), verify_result=code)
    assert_refused(outcome, f"certificate verification failed ({code})", identity)


def test_fails_closed_without_a_client_certificate(irule):
    # verify_result reads 0 (X509_V_OK) when no certificate was sent.
    assert_refused(connect(irule, None, verify_result=0), "no client certificate")


@pytest.mark.parametrize("events", [("CLIENT_ACCEPTED", "LB_SELECTED"), ("LB_SELECTED",)])
def test_fails_closed_when_lb_selected_runs_without_the_handshake_event(irule, events):
    outcome = connect(irule, None, events=events)
    assert (
        outcome.rejected and outcome.events == events and outcome.snat_calls == outcome.snatpool_calls == ()
    )
    assert outcome.logs == (
        f'egress-authz deny id=- reason="no authorisation decision" client={CLIENT[0]}:{CLIENT[1]}',
    )


def test_fails_closed_in_lb_selected_after_a_refused_handshake(pki, irule):
    outcome = connect(irule, workload(pki, "reports", "x", "other.example"), stop_on_reject=False)
    assert outcome.events == tclstubs.DEFAULT_EVENTS
    assert outcome.rejected and outcome.snat_calls == outcome.snatpool_calls == ()
    assert [line.split(" reason=")[1].split('"')[1] for line in outcome.logs] == [
        "foreign trust domain",
        "no authorisation decision",
    ]


def test_fails_for_a_service_account_not_listed_for_a_restricted_namespace(pki, irule):
    identity = spiffe("payments", "intruder")
    assert_refused(
        connect(irule, workload(pki, "payments", "intruder")), "service account not allowed", identity
    )


@pytest.mark.parametrize(
    ("dns", "reason"),
    [
        (
            f"evil\n    X509v3 Subject Alternative Name: critical\n        URI:{spiffe('bookinfo', 'a')}",
            "malformed subject alternative name",
        ),
        (f"evil\n{' ' * 24}URI:{spiffe('bookinfo', 'a')}", "malformed subject alternative name"),
        (f"evil\nURI:{spiffe('bookinfo', 'a')}", "expected exactly one URI SAN, found 0"),
    ],
    ids=["fake-header", "fake-entry-line", "fake-unindented-line"],
)
def test_fails_for_a_san_name_with_an_embedded_newline(pki, irule, dns, reason):
    # openssl prints the name raw, so the smuggled text shows up as lines of its own.
    outcome = connect(irule, pkitools.client_leaf(pki.mesh, [x509.DNSName(dns)]).cert)
    assert outcome.rejected and not outcome.allowed
    assert f'reason="{reason}"' in outcome.logs[0]


def test_fails_for_a_directory_name_san_that_could_hide_a_uri(pki, irule):
    hidden = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"x, URI:{spiffe('bookinfo', 'a')}")])
    cert = pkitools.client_leaf(pki.mesh, [x509.DirectoryName(hidden)]).cert
    outcome = connect(irule, cert)
    assert outcome.rejected and "unsupported subject alternative name entry" in outcome.logs[0]


@pytest.mark.parametrize("style", ["openssl", "rfc2253"])
def test_the_units_mesh_ca_is_recognised_in_the_issuer_text_of_every_tmos_version(pki, irule, style):
    identity = spiffe("bookinfo", "productpage")
    outcome = connect(irule, workload(pki, "bookinfo", "productpage"), issuer_style=style)
    assert_allowed(outcome, identity)


@pytest.mark.parametrize("style", ["openssl", "rfc2253"])
def test_fails_for_this_trust_domain_signed_by_another_ca_under_the_same_root(pki, irule, style):
    other = pkitools.issue(pkitools.ca_spec("other-unit", issuer="root"), pki.root)
    cert = pkitools.istio_workload_cert(
        other, trust_domain=TD, namespace="bookinfo", service_account="a"
    ).cert
    outcome = connect(irule, cert, issuer_style=style)
    assert_refused(outcome, "not issued by this unit's mesh CA", spiffe("bookinfo", "a"))


@pytest.mark.parametrize(
    "issuer",
    [
        "O=Test Org, OU=tests, CN=Test Org mesh, C=AU",
        "O=Test Org, OU=tests",
        "O=Test Org, OU=tests, OU=tests, CN=Test Org mesh",
        "O=Test Org, OU=tests, CN=Test Org mesh2",
        "O=Test Org OU=tests CN=Test Org mesh",
        "",
    ],
)
def test_fails_for_an_issuer_name_with_an_attribute_more_less_or_different(pki, irule, issuer):
    outcome = connect(irule, workload(pki, "bookinfo", "a"), issuer=issuer)
    assert_refused(outcome, "not issued by this unit's mesh CA", spiffe("bookinfo", "a"))


@pytest.mark.parametrize(
    "issuer",
    ["CN=Test Org mesh,OU=tests,O=Test Org", "OU=tests,  CN=Test Org mesh , O=Test Org"],
)
def test_the_issuer_comparison_ignores_order_and_spacing(pki, irule, issuer):
    assert_allowed(connect(irule, workload(pki, "bookinfo", "a"), issuer=issuer), spiffe("bookinfo", "a"))


def test_the_issuer_text_is_openssls_one_line_form_with_quotes(pki):
    tricky = pkitools.issue(pkitools.ca_spec("root", organization='Biz.,Inc. "#1"+x\\y'))
    for cert in (tricky.cert, workload(pki, "bookinfo", "a")):
        printed = subprocess.run(
            [
                "openssl",
                "x509",
                "-noout",
                "-issuer",
                "-nameopt",
                "sep_comma_plus_space,sname,esc_2253,use_quote,utf8",
            ],
            input=cert.public_bytes(serialization.Encoding.PEM),
            capture_output=True,
            check=True,
        ).stdout.decode()
        assert printed.strip() == "issuer=" + tclstubs.issuer_text(cert)


def test_fails_closed_on_a_malformed_policy_record(pki):
    broken = tclstubs.IRule(irules.egress_authz(TD, DG, ISSUER), {DG: {"bookinfo": "*"}})
    identity = spiffe("bookinfo", "productpage")
    assert_refused(
        connect(broken, workload(pki, "bookinfo", "productpage")), "malformed policy record", identity
    )


def test_fails_with_a_runtime_error_when_the_data_group_path_is_not_the_configured_one(pki):
    elsewhere = tclstubs.IRule(
        irules.egress_authz(TD, DG, ISSUER), {"/Common/egress-allow": {"bookinfo": "*|"}}
    )
    outcome = elsewhere.connect(workload(pki, "bookinfo", "productpage"))
    assert outcome.error and DG in outcome.error and not outcome.allowed


def test_a_policy_change_changes_the_data_group_not_the_irule(pki):
    text = irules.egress_authz(TD, DG, ISSUER)
    assert not any(a.namespace in text for a in ALLOW)
    cert = workload(pki, "payments", "batch")
    before = tclstubs.IRule(
        text, {DG: dict(irules.data_group_records(ALLOW, snat_pool))}, snat_pools=SNAT_POOLS
    )
    after = tclstubs.IRule(
        text, {DG: {"payments": f"api batch|{snat_pool('payments')}"}}, snat_pools=SNAT_POOLS
    )
    assert not connect(before, cert).allowed
    assert connect(after, cert).snatpool == snat_pool("payments")


@pytest.mark.parametrize(
    "case",
    [
        ("bookinfo", "productpage", TD, "allow"),
        ("payments", "api", TD, "allow"),
        ("payments", "intruder", TD, "deny"),
        ("bookinfo-evil", "x", TD, "deny"),
        ("bookinfo", "productpage", "evil-prod.example", "deny"),
    ],
    ids="-".join,
)
def test_every_decision_is_logged_once_with_the_identity(pki, irule, case):
    namespace, account, trust_domain, verdict = case
    outcome = connect(irule, workload(pki, namespace, account, trust_domain))
    (line,) = outcome.logs
    assert line.startswith(f"egress-authz {verdict} id={spiffe(namespace, account, trust_domain)} ")
    assert line.endswith(f"client={CLIENT[0]}:{CLIENT[1]}")
    assert outcome.allowed is (verdict == "allow")


# ---------------------------------------------------------------------------------------------
# Template and data group
# ---------------------------------------------------------------------------------------------


def test_the_template_is_filled_with_the_trust_domain_and_data_group_path():
    text = irules.egress_authz("prod.cpaas.example.com", "/cpaas-onprem-syd/egress-allow", ISSUER)
    assert "@" not in text
    assert '$authz_td ne "prod.cpaas.example.com"' in text
    assert "[lsort {{CN=Test Org mesh} {O=Test Org} {OU=tests}}]" in text
    assert text.count("/cpaas-onprem-syd/egress-allow") >= 2
    assert tkinter.Tcl().call("info", "complete", text) in (1, "1")


@pytest.mark.parametrize(
    "trust_domain",
    [
        "prod]example",
        "prod$x",
        "prod;x",
        "prod example",
        'prod"x',
        "[x]",
        "{x}",
        "prod\\x",
        "prod\nx",
        "Prod.example",
        "",
        "prod@x",
    ],
)
def test_fails_to_render_for_a_trust_domain_with_tcl_metacharacters(trust_domain):
    with pytest.raises(ValueError, match="trust domain"):
        irules.egress_authz(trust_domain, DG, ISSUER)


@pytest.mark.parametrize("path", ["egress-allow", "/egress-allow", "/p/x;y", "/p/x y", "/p/[x]", "/p/$x", ""])
def test_fails_to_render_for_a_data_group_that_is_not_a_plain_full_path(path):
    with pytest.raises(ValueError, match="data group"):
        irules.egress_authz(TD, path, ISSUER)


@pytest.mark.parametrize(
    "issuer",
    [
        (),
        ("O=a,b",),
        ("O=a}",),
        ("O=a{",),
        ("O=a\\",),
        ("O=$x",),
        ("O=[x]",),
        ("O=a", "O=a"),
        ("CN= x",),
        ("CN=x ",),
        ("x",),
        ('O="x"',),
    ],
)
def test_fails_to_render_for_an_issuer_that_is_not_plain_attr_value_text(issuer):
    with pytest.raises(ValueError, match="issuer"):
        irules.egress_authz(TD, DG, issuer)


def test_fails_to_render_when_a_placeholder_is_left():
    with pytest.raises(ValueError, match="@POOL@"):
        irules.render("x @TRUST_DOMAIN@ @POOL@", {"TRUST_DOMAIN": TD})


def test_data_group_records_are_sorted_with_star_and_empty_snat_defaults():
    entries = [*ALLOW, ("api-gw", ("edge",), None)]
    assert irules.data_group_records(entries, snat_pool) == [
        ("api-gw", "edge|"),
        ("bookinfo", "*|"),
        ("payments", f"api worker|{snat_pool('payments')}"),
        ("reports", f"*|{snat_pool('reports')}"),
    ]


@pytest.mark.parametrize(
    "entries",
    [
        [("bookinfo", (), None), ("bookinfo", ("x",), None)],
        [("Bookinfo", (), None)],
        [("bookinfo", ("a b",), None)],
        [("bookinfo", ("a|b",), None)],
        [("bookinfo", "productpage", None)],
        [("bookinfo", (), "10.0.0.300")],
    ],
    ids=["duplicate", "uppercase", "space", "bar", "string-accounts", "bad-snat"],
)
def test_fails_to_build_data_group_records_that_would_break_the_format(entries):
    with pytest.raises(ValueError):
        irules.data_group_records(entries, snat_pool)


@pytest.mark.parametrize("pool", ["egress-snat-x", "/p/x|y", "/p/x y", "/p/[x]", ""])
def test_fails_to_build_a_data_group_record_naming_a_snat_pool_that_is_not_a_plain_full_path(pool):
    with pytest.raises(ValueError, match="SNAT pool"):
        irules.data_group_records([("reports", (), "10.30.17.202")], lambda _namespace: pool)


# ---------------------------------------------------------------------------------------------
# Tcl 8.4
# ---------------------------------------------------------------------------------------------


def test_the_irule_uses_tcl_8_4_constructs_only():
    assert tclstubs.tcl84_violations(irules.template("egress_authz")) == []
    assert tclstubs.tcl84_violations(irules.egress_authz(TD, DG, ISSUER)) == []


@pytest.mark.parametrize(
    ("snippet", "construct"),
    [
        ("set d [dict create a 1]", "dict"),
        ("dict set d a 1", "dict"),
        ("lassign $parts ns sa", "lassign"),
        ("log local0. [join [list {*}$uris]]", "{*} expansion"),
        ("if {$ns in $allowed} { reject }", "in/ni operator"),
        ("if {[lindex $l 0] ni $allowed} { reject }", "in/ni operator"),
        ("set l [lmap x $l {string trim $x}]", "lmap"),
        ("try { reject } on error {e} { log local0. $e }", "try"),
        ("set s [string cat a b]", "string cat"),
        ("apply {{x} {return $x}} 1", "apply"),
        ("coroutine gen walk $l", "coroutine"),
        ("chan configure $s -blocking 0", "chan"),
        ("set l [lsort -stride 2 $l]", "-stride"),
        ("set i [lsearch -stride 2 $l x]", "-stride"),
        ("set l [lrepeat 3 x]", "lrepeat"),
        ("set n [expr {2 ** 8}]", "** operator"),
    ],
)
def test_the_lint_catches_each_tcl_8_5_construct(snippet, construct):
    text = f"when CLIENT_ACCEPTED {{\n    {snippet}\n}}\n"
    assert construct in tclstubs.tcl84_violations(text)


def test_the_lint_ignores_comments_and_quoted_text():
    text = '# try dict lassign, x in y\nwhen LB_SELECTED {\n    log local0. "not in list; try {*} dict"\n}\n'
    assert tclstubs.tcl84_violations(text) == []


def test_the_harness_refuses_tcl_8_5_commands_at_run_time():
    outcome = tclstubs.IRule("when CLIENT_ACCEPTED { dict set x a 1 }", {}).connect(None)
    assert outcome.error and "dict" in outcome.error
