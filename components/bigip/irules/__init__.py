"""iRules shipped with cpaas: Tcl templates rendered per unit, and the data groups they read.

The templates live beside this module as `.tcl` files with `@NAME@` placeholders. Values are
checked before they are substituted: the result is Tcl, so a value must not be able to end a
string or start a command substitution (defence in depth, config validates them too).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

_PLACEHOLDER = re.compile(r"@[A-Z][A-Z0-9_]*@")
# SPIFFE trust domain characters (lowercase letters, digits, '.', '-', '_').
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]+")
# A BIG-IP object referenced by full path: /<partition>[/<folder>]/<name>.
_FULL_PATH = re.compile(r"(?:/[A-Za-z0-9_][A-Za-z0-9._-]*){2,}")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# One "attr=value" of a CA name: no character a DN printer quotes or escapes, nothing Tcl reads
# inside a braced list element (braces, backslash), no outer spaces.
_RDN = re.compile(r"[A-Za-z]+=[A-Za-z0-9](?:[A-Za-z0-9 .&'()_:@!?*%-]*[A-Za-z0-9.)])?")


def template(name: str) -> str:
    """The text of the iRule template `<name>.tcl` shipped in this package."""
    return resources.files(__package__).joinpath(f"{name}.tcl").read_text(encoding="utf-8")


def render(text: str, values: Mapping[str, str]) -> str:
    """`text` with every `@KEY@` replaced by `values[KEY]`; a placeholder left over is an error."""
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    left = sorted(set(_PLACEHOLDER.findall(text)))
    if left:
        raise ValueError(f"iRule template placeholders without a value: {', '.join(left)}")
    return text


def egress_authz(trust_domain: str, data_group: str, issuer: Sequence[str]) -> str:
    """The egress authorisation iRule for a unit: its mesh trust domain, its allow-list data
    group by full path (e.g. /cpaas-onprem-syd/egress-allow), and the subject of the unit's mesh
    CA as "attr=value" strings (`pki.CertSpec.subject_rdns`): the issuer a client leaf must have."""
    if not _TRUST_DOMAIN.fullmatch(trust_domain):
        raise ValueError(
            f"trust domain {trust_domain!r}: use lowercase letters, digits, '.', '-' and '_' only"
        )
    if not _FULL_PATH.fullmatch(data_group):
        raise ValueError(
            f"data group {data_group!r}: give the full path, e.g. /partition/name "
            "(letters, digits, '.', '-', '_')"
        )
    bad = [rdn for rdn in issuer if not _RDN.fullmatch(rdn)]
    if not issuer or bad or len(set(issuer)) != len(issuer):
        raise ValueError(
            f"issuer {list(issuer)!r}: give the mesh CA's name as distinct 'attr=value' strings "
            "(letters, digits, spaces and . & ' ( ) _ : @ ! ? * % - in values)"
        )
    values = {
        "TRUST_DOMAIN": trust_domain,
        "DATA_GROUP": data_group,
        "ISSUER": " ".join("{" + rdn + "}" for rdn in sorted(issuer)),
    }
    return render(template("egress_authz"), values)


def data_group_records(allow: Iterable[Any], snat_pool: Callable[[str], str]) -> list[tuple[str, str]]:
    """(name, data) records of the egress allow-list data group, sorted by namespace.

    Each entry is a `(namespace, service_accounts, snat_address)` tuple or an object with those
    attributes (`config.EgressAllow`). data = "<service accounts joined by single spaces, or *>|
    <SNAT pool full path or empty>": no service accounts means any service account of the
    namespace; a namespace with its own SNAT address gets `snat_pool(namespace)`, the pool that
    holds that address alone; none means the virtual server's SNAT pool.
    """
    records: dict[str, str] = {}
    for entry in allow:
        namespace, accounts, snat = _fields(entry)
        if namespace in records:
            raise ValueError(f"egress allow-list: namespace {namespace} is listed twice")
        for name in (namespace, *accounts):
            if not _DNS_LABEL.fullmatch(name) or len(name) > 63:
                raise ValueError(f"egress allow-list: {name!r} is not a DNS-1123 label")
        pool = ""
        if snat is not None:
            ipaddress.ip_address(str(snat))
            pool = snat_pool(namespace)
            if not _FULL_PATH.fullmatch(pool):
                raise ValueError(
                    f"egress allow-list {namespace}: SNAT pool {pool!r} is not a full path such as "
                    "/partition/name (letters, digits, '.', '-', '_')"
                )
        records[namespace] = f"{' '.join(sorted(set(accounts))) or '*'}|{pool}"
    return sorted(records.items())


def _fields(entry: Any) -> tuple[str, Sequence[str], object]:
    if isinstance(entry, tuple) and not hasattr(entry, "namespace"):
        namespace, accounts, snat = entry
    else:
        namespace, accounts, snat = entry.namespace, entry.service_accounts, entry.snat_address
    if isinstance(accounts, str):
        raise ValueError(f"egress allow-list {namespace}: service accounts must be a list, not a string")
    return str(namespace), tuple(str(a) for a in accounts), snat
