"""Constrained types of the stack file: names, addresses, versions and paths.

Each validator raises one message: the value, what is wrong, what is allowed and the fix. Its
docstring says what it accepts; tools.configdoc shows that in docs/config.md.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, Strict

from components import versions

# Ref: kubernetes/apimachinery@v0.34.10 pkg/util/validation/validation.go (IsDNS1123Label,
# IsDNS1035Label: 63 at most; Services are named by the latter, namespaces by the former)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_FQDN_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# BIG-IP object names: letters, digits, '.', '-', '_'; must start with a letter.
_BIGIP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")
_CONFIG_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")
# Docker's reference grammar, lowercase and without a registry port: path components joined by
# '.', '_', '__' or dashes, a repository of at most 255, a tag of at most 128.
# Ref: distribution/reference@v0.6.0 regexp.go (ReferenceRegexp), reference.go
_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_REF = re.compile(
    rf"^(?P<repository>{_IMAGE_COMPONENT}(?:/{_IMAGE_COMPONENT})*):[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}$"
)
_TRUST_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*\.(pem|crt)")

# Field patterns, and how an error message (and docs/config.md) says each in words.
QUANTITY = r"^[1-9][0-9]*(Mi|Gi|Ti)$"
DURATION = r"^[1-9][0-9]*(h|d|w)$"
WAF_TEMPLATE = r"^POLICY_TEMPLATE_[A-Z0-9_]+$"
PATTERN_HINTS = {
    DURATION: "a whole number of hours, days or weeks, e.g. 72h or 15d",
    QUANTITY: "a whole number of Mi, Gi or Ti, e.g. 50Gi",
    WAF_TEMPLATE: "an F5 policy template name, e.g. POLICY_TEMPLATE_RAPID_DEPLOYMENT",
}


def non_empty(what: str, fix: str) -> Any:
    def check(value: tuple[Any, ...]) -> tuple[Any, ...]:
        # An AfterValidator runs only once every item is valid, so a bad item never also
        # reports "empty" (as min_length would).
        if not value:
            raise ValueError(f"no {what}; {fix}")
        return value

    check.__doc__ = "At least one."
    return AfterValidator(check)


def _dns_label(value: str) -> str:
    """A DNS-1123 label: 1-63 lowercase letters, digits and '-', starting and ending with a letter
    or digit."""
    if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a DNS-1123 label; use 1-63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def _at_most(value: str, limit: int, why: str) -> str:
    if len(value) > limit:
        raise ValueError(f"{value!r} is {len(value)} characters; {why}")
    return value


def _unit_name(value: str) -> str:
    """A DNS-1123 label of at most 20 characters (it prefixes cluster, partition and resource
    names)."""
    return _at_most(
        _dns_label(value), 20, "unit names are at most 20 (they prefix cluster, partition and resource names)"
    )


def _app_name(value: str) -> str:
    """3-63 lowercase letters, digits and '-', starting with a letter and ending with a letter or
    digit (CIS names the app's TLSProfile after it), e.g. mqtt."""
    # Ref: F5Networks/k8s-bigip-ctlr@v2.20.4 docs/config_examples/customResourceDefinitions/
    #      customresourcedefinitions.yml (VirtualServer spec.tlsProfileName)
    if len(value) < 3 or len(value) > 63 or not _DNS_1035_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a usable app name; use 3-63 lowercase letters, digits and '-', "
            "starting with a letter and ending with a letter or digit (CIS names the app's "
            "TLSProfile after it), e.g. mqtt"
        )
    return value


def _service_name(value: str) -> str:
    """A Kubernetes Service name (a DNS-1035 label): 1-63 lowercase letters, digits and '-',
    starting with a letter and ending with a letter or digit, e.g. productpage."""
    # Ref: kubernetes/kubernetes pkg/apis/core/validation/validation.go (ValidateServiceName =
    # NameIsDNS1035Label); pkg/apis/networking/validation/validation.go holds an Ingress backend's
    # service.name to it too unless the alpha RelaxedServiceNameValidation gate is on.
    if len(value) > 63 or not _DNS_1035_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Kubernetes Service name (a DNS-1035 label); use 1-63 lowercase "
            "letters, digits and '-', starting with a letter and ending with a letter or digit, "
            "e.g. productpage"
        )
    return value


def _fqdn(value: str) -> str:
    """A fully qualified domain name: lowercase labels of letters, digits and '-' joined by '.',
    at most 253 characters, e.g. bookinfo.apps.example.com."""
    labels = value.split(".")
    if (
        len(value) > 253
        or len(labels) < 2
        or not all(len(lb) <= 63 and _FQDN_LABEL.fullmatch(lb) for lb in labels)
        or labels[-1].isdigit()
    ):
        raise ValueError(
            f"{value!r} is not a fully qualified domain name; use lowercase labels of letters, "
            "digits and '-' joined by '.', e.g. bookinfo.apps.example.com"
        )
    return value


def _app_fqdn(value: str) -> str:
    """A fully qualified domain name of at most 64 characters (the app certificate's common name,
    RFC 5280 ub-common-name)."""
    # The app's server certificate names it as its CN. Ref: RFC 5280 appendix A (ub-common-name)
    return _at_most(
        _fqdn(value),
        64,
        "an app's FQDN is its certificate's common name, which X.509 caps at 64 "
        "(RFC 5280 ub-common-name), use a shorter name",
    )


def _trust_domain(value: str) -> str:
    """A SPIFFE trust domain Istio accepts: lowercase DNS labels joined by '.', at most 255
    characters, no scheme, port or path, e.g. prod.cpaas.example.com."""
    # SPIFFE allows [a-z0-9._-] up to 255; Istio's mesh config wants DNS labels (no '_').
    # Ref: spiffe/spiffe@665a28f3 standards/SPIFFE-ID.md (2.1, 2.3)
    # Ref: istio/istio@1.30.3 pkg/config/validation/agent/validation.go (ValidateTrustDomain)
    if len(value) > 255 or not all(len(lb) <= 63 and _DNS_LABEL.fullmatch(lb) for lb in value.split(".")):
        raise ValueError(
            f"{value!r} is not a SPIFFE trust domain Istio accepts; use lowercase DNS labels (1-63 "
            "letters, digits and '-', starting and ending with a letter or digit) joined by '.', at "
            "most 255 characters, with no scheme, port or path, e.g. prod.cpaas.example.com"
        )
    return value


def _bigip_name(value: str) -> str:
    """A BIG-IP object name: starts with a letter; letters, digits, '.', '-', '_' (at most 64);
    not 'Common'."""
    if not _BIGIP_NAME.fullmatch(value) or value.lower() == "common":
        raise ValueError(
            f"{value!r} is not a usable BIG-IP partition or object name; start with a letter, "
            "use letters, digits, '.', '-', '_' (at most 64), and not 'Common'"
        )
    return value


# ADC properties: a tenant named like one would be read as that property.
# Ref: F5Networks/f5-appsvcs-extension@v3.56.0 schema/3.56.0/as3-schema.json (definitions.ADC)
AS3_DECLARATION_KEYS = (
    "class", "constants", "controls", "id", "label",
    "remark", "schemaVersion", "scratch", "target", "updateMode",
)  # fmt: skip


def _partition(value: str) -> str:
    """A BIG-IP partition: 2-64 letters, digits, '.', '-' and '_', starting with a letter; not
    Common nor an AS3 declaration key, e.g. cpaas-aws-syd."""
    # Two characters at least: the f5bigip provider's partition rule and CIS's CRDs.
    # Ref: F5Networks/terraform-provider-bigip@v1.26.0 bigip/validators.go (validatePartitionName)
    # Ref: F5Networks/k8s-bigip-ctlr@v2.20.4 (VirtualServer spec.partition, as for tlsProfileName)
    if (
        not _BIGIP_NAME.fullmatch(value)
        or len(value) < 2
        or value.lower() == "common"
        or value in AS3_DECLARATION_KEYS
    ):
        raise ValueError(
            f"{value!r} is not a usable BIG-IP partition; use 2-64 letters, digits, '.', '-' and '_', "
            "starting with a letter, and not Common or an AS3 declaration key "
            f"({', '.join(AS3_DECLARATION_KEYS)}), e.g. cpaas-aws-syd"
        )
    return value


def _config_key(value: str) -> str:
    """The bare name of another key of this stack's config (no 'cpaas:' prefix): letters, digits,
    '_', '-', '.', starting with a letter."""
    if not _CONFIG_KEY.fullmatch(value) or ":" in value:
        raise ValueError(
            f"{value!r} is not a config key name; give the bare key (no 'cpaas:' prefix) "
            "made of letters, digits, '_', '-', '.'"
        )
    return value


def image_ref(value: str) -> str:
    """A pinned image reference repository:tag with a fixed tag (never 'latest')."""
    match = _IMAGE_REF.fullmatch(value)
    if match is None or len(match["repository"]) > 255 or value.endswith(":latest"):
        raise ValueError(
            f"{value!r} is not a pinned image reference; use repository:tag with a fixed tag "
            "(never 'latest'), the repository as lowercase components of letters and digits joined "
            f"by '.', '_', '__' or '-' and separated by '/', e.g. {versions.K3S_IMAGE}"
        )
    return value


def _trust_file(value: str) -> str:
    """The path of a committed PEM file relative to the project folder, ending in .pem or .crt,
    e.g. trust/prod/bigip-aws-syd.pem."""
    # The f5bigip provider reads this path when the engine configures it, also for a refresh or
    # destroy that does not run the program; providers start in the project folder, so a path
    # relative to it names the committed file on every checkout (README "The refresh model").
    if len(value) > 200 or not _TRUST_FILE.fullmatch(value) or ".." in value.split("/"):
        raise ValueError(
            f"{value!r} is not a certificate file in the project; give the path of a committed "
            "PEM file relative to the project folder (letters, digits, '.', '_', '-' and '/', "
            "ending in .pem or .crt), e.g. trust/prod/bigip-aws-syd.pem"
        )
    return value


def _matching(pattern: str, problem: str, allowed: str = "") -> AfterValidator:
    """A validator that accepts text matching `pattern` whole, else says `problem` about it. Its
    docstring says what it accepts: `allowed`, else what follows the problem's '; '."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} {problem}")
        return value

    check.__doc__ = (allowed or re.sub(r"^(use|pin) ", "", problem.partition("; ")[2])) + "."
    return AfterValidator(check)


# Printable ASCII without the characters that DN printers quote or escape (RFC 4514 and
# OpenSSL's), '/' (old slash form), '=', Tcl's list and substitution characters, and no outer
# spaces: the egress iRule compares its CA's issuer name as plain "attr=value" text.
_DN_VALUE = _matching(
    r"[A-Za-z0-9](?:[A-Za-z0-9 .&'()_:@!?*%-]*[A-Za-z0-9.)])?",
    "cannot go into a certificate name as plain text; use letters, digits, spaces and "
    ". & ' ( ) _ : @ ! ? * % - (no , + \" \\ < > ; # = / [ ] { } $), starting with a letter or "
    "digit, e.g. Example Bank Ltd",
)
_LOCATION = _matching(
    r"[A-Za-z0-9][A-Za-z0-9 ._/-]{0,63}",
    "is not a data center location; use up to 64 letters, digits, spaces and . _ / -, "
    "starting with a letter or digit, e.g. onprem/syd-dns",
)
_SEMVER = _matching(
    r"\d+\.\d+\.\d+", f"is not an exact version; pin MAJOR.MINOR.PATCH, e.g. {versions.ISTIO_VERSION}"
)
_K8S_MINOR = _matching(
    r"1\.\d{2}", "is not a Kubernetes minor version; use e.g. '1.33'", "1. and two digits, e.g. '1.33'"
)
# The partition as CIS's `waf` field has it: no '.', 2 characters at least.
# Ref: F5Networks/k8s-bigip-ctlr@v2.20.4 (VirtualServer spec.waf)
_WAF_POLICY = _matching(
    r"/[A-Za-z][A-Za-z0-9_-]+/[A-Za-z][A-Za-z0-9_.-]*",
    "is not a WAF policy path CIS accepts; use /<partition>/<name>: a partition of 2 or more "
    "letters, digits, '-' or '_' starting with a letter, and a name of letters, digits, '.', '-' "
    "or '_' starting with a letter, e.g. /Common/bookinfo-waf",
)
# Where an access profile or per-request policy may be: /Common (a CIS virtual server references
# only its own partition and /Common, and CIS owns its partition alone), as an existing object or
# one cpaas imports into /Common (AS3 imports APM objects into its tenant root); the path as CIS's
# VirtualServer CRD has it.
# Ref: F5Networks/k8s-bigip-ctlr@v2.20.4 docs/config_examples/customResourceDefinitions/
#      customresourcedefinitions.yml (VirtualServer spec.profileAccess, spec.policyPerRequestAccess)
_ACCESS_PATH = _matching(
    r"/Common/(Shared/)?[A-Za-z][A-Za-z0-9_.-]*",
    "is not an access profile cpaas can attach; name one in /Common, e.g. /Common/azuread-oidc (a "
    "CIS virtual server references only its own partition and /Common, and CIS owns its partition "
    "alone), or import one with access.import",
    "/Common/<name> or /Common/Shared/<name>: a name of letters, digits, '.', '-' or '_' starting "
    "with a letter, e.g. /Common/azuread-oidc",
)
# A JWT claim as Istio's `request.auth.claims[...]` takes it: no brackets; '.' reaches a nested claim.
_CLAIM = _matching(
    r"[A-Za-z0-9_:/-]+(\.[A-Za-z0-9_:/-]+)*",
    "is not a claim name; use letters, digits, '_', ':', '/' and '-', with '.' between the names of "
    "nested claims, e.g. groups or realm_access.roles",
)


def _https_url(value: str) -> str:
    """An https URL with a host: https://<host>[:port]/<path>, no spaces."""
    try:
        parsed = urlsplit(value)
        host = parsed.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parsed, host = None, None
    if (
        parsed is None
        or parsed.scheme != "https"
        or not host
        or any(c.isspace() for c in value)
        or len(value) > 2000
        or parsed.fragment
    ):
        raise ValueError(
            f"{value!r} is not an https URL; use https://<host>/<path>, e.g. "
            "https://login.microsoftonline.com/<tenant>/v2.0 (a token issuer and its keys are "
            "trusted only over TLS)"
        )
    return value


def _proxy_host(value: str) -> str:
    """An IPv4 address or a fully qualified domain name, e.g. 10.10.18.10 or proxy.example.com."""
    try:
        IPv4Address(value)
        return value
    except ValueError:
        pass
    try:
        return _fqdn(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither an IPv4 address nor a fully qualified domain name; use e.g. "
            "10.10.18.10 or proxy.example-bank.com (lowercase labels of letters, digits and '-')"
        ) from None


# A NO_PROXY entry as Go's golang.org/x/net/http/httpproxy reads it: a host, a .domain, an IP or
# a CIDR, optionally with a port.
_NO_PROXY = _matching(
    r"[A-Za-z0-9.*:/_-]{1,253}",
    "is not a NO_PROXY entry; use a host, a .domain, an address or a CIDR, e.g. .example-bank.com",
)


# Kubernetes label keys and values, as a pod selector's matchLabels takes them.
# Ref: kubernetes/apimachinery pkg/util/validation/validation.go (IsQualifiedName, IsValidLabelValue)
_LABEL_KEY = _matching(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?",
    "is not a Kubernetes label key; use [prefix/]name, a name of 1-63 letters, digits, '-', '_' "
    "or '.' starting and ending with a letter or digit, e.g. app.kubernetes.io/name",
)
_LABEL_VALUE = _matching(
    r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?",
    "is not a Kubernetes label value; use at most 63 letters, digits, '-', '_' or '.' starting and "
    "ending with a letter or digit, e.g. portal",
)


_STACK_REF = _matching(
    r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,2}",
    "is not a stack reference; use org/project/stack, project/stack or stack",
)


def _text_only(value: Any) -> Any:
    # ipaddress would read an int (or True) as an address; the stack file writes addresses as text.
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an address; write it as text, e.g. 10.0.0.1 or 10.0.0.0/16")
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
Location = Annotated[str, _LOCATION]
DnValue = Annotated[str, _DN_VALUE]
UnitName = Annotated[str, AfterValidator(_unit_name)]
AppName = Annotated[str, AfterValidator(_app_name)]
ServiceName = Annotated[str, AfterValidator(_service_name)]
Fqdn = Annotated[str, AfterValidator(_fqdn)]
AppFqdn = Annotated[str, AfterValidator(_app_fqdn)]
TrustDomain = Annotated[str, AfterValidator(_trust_domain)]
BigipName = Annotated[str, AfterValidator(_bigip_name)]
PartitionName = Annotated[str, AfterValidator(_partition)]
WafPolicyPath = Annotated[str, _WAF_POLICY]
ConfigKey = Annotated[str, AfterValidator(_config_key)]
ImageRef = Annotated[str, AfterValidator(image_ref)]
SemVer = Annotated[str, _SEMVER]
K8sMinor = Annotated[str, _K8S_MINOR]
StackRefName = Annotated[str, _STACK_REF]
AccessPath = Annotated[str, _ACCESS_PATH]
ClaimName = Annotated[str, _CLAIM]
HttpsUrl = Annotated[str, AfterValidator(_https_url)]
LabelKey = Annotated[str, _LABEL_KEY]
LabelValue = Annotated[str, _LABEL_VALUE]
NoProxyEntry = Annotated[str, _NO_PROXY]
ProxyHost = Annotated[str, AfterValidator(_proxy_host)]
TrustFile = Annotated[str, AfterValidator(_trust_file)]
# Strict: YAML's `true` must not read as port 1, nor 10 as a bool.
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]
Asn = Annotated[int, Strict(), Field(ge=1, le=4294967295)]
IPv4Addr = Annotated[IPv4Address, BeforeValidator(_text_only)]
IPv4Net = Annotated[IPv4Network, BeforeValidator(_text_only)]
