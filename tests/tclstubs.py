"""Run an iRule in a real Tcl interpreter (tkinter's Tcl 8.6) against stubbed BIG-IP commands.

`IRule(text, data_groups).connect(cert, ...)` simulates one client connection: `when EVENT body`
stores the bodies, then the events run in order in one connection-scoped variable space (as on a
BIG-IP), and the `Outcome` says whether it was rejected, which `snat` was applied, what was
logged. A Tcl runtime error counts as a reset (the BIG-IP resets the connection).

Stubs: `SSL::cert count|<index>`, `SSL::verify_result`, `X509::extensions`, `X509::issuer`,
`class match|lookup|exists` (string data groups from a Python dict), `log`, `reject`, `snat`,
`snatpool <name>` (an error for a pool not given to `IRule`),
`IP::client_addr`, `TCP::client_port`. Anything else is an error. Tcl 8.5+ commands (dict,
lassign, lmap, apply, try, ...) are removed from the interpreter, and `tcl84_violations` lints
the syntax that cannot be removed (`{*}`, `in`/`ni`, `string cat`, `-stride`), since BIG-IP runs Tcl 8.4.

`X509::extensions` returns the text BIG-IP prints for the real certificate: the "X509v3
extensions:" block of `openssl x509 -noout -text`; without the openssl CLI it fails (CI checks for
it first). `render_extensions` is our own rendering of that format, held to openssl's by a test.
Ref: https://clouddocs.f5.com/api/irules/X509__extensions.html

`X509::issuer` returns the real certificate's issuer name as TMOS 13.0+ prints it (OpenSSL's
form: certificate order, ", " between attributes, values with special characters in double
quotes) or, with `issuer_style="rfc2253"`, as TMOS 12 and older did (reversed, ",", backslash
escapes). Ref: https://cdn.f5.com/product/bugtracker/ID607410.html
"""

from __future__ import annotations

import functools
import ipaddress
import re
import shutil
import subprocess
import tkinter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

DEFAULT_EVENTS = ("CLIENT_ACCEPTED", "CLIENTSSL_HANDSHAKE", "LB_SELECTED")
NO_EXTENSIONS = "(no extensions)"

# Commands newer than Tcl 8.4 that can simply be removed from the interpreter.
TCL85_COMMANDS = (
    "dict",
    "lassign",
    "lmap",
    "apply",
    "coroutine",
    "yield",
    "try",
    "throw",
    "tailcall",
    "lrepeat",
    "lreverse",
    "chan",
    "zlib",
)

# ---------------------------------------------------------------------------------------------
# Tcl 8.4 lint
# ---------------------------------------------------------------------------------------------

_COMMAND_START = r"(?:^|(?<=[\[;{]))\s*"
TCL84_FORBIDDEN: Mapping[str, re.Pattern[str]] = {
    **{cmd: re.compile(_COMMAND_START + rf"{cmd}\b", re.MULTILINE) for cmd in TCL85_COMMANDS},
    "{*} expansion": re.compile(r"\{\*\}"),
    "in/ni operator": re.compile(r"(?<=[\s)}\]\"])(?:in|ni)(?=\s)"),
    "string cat": re.compile(r"\bstring\s+cat\b"),
    "-stride": re.compile(r"(?<![\w-])-stride\b"),
    "string reverse": re.compile(r"\bstring\s+reverse\b"),
    "** operator": re.compile(r"\*\*"),
}


def _code_only(text: str) -> str:
    """Tcl text without comments and without the contents of double-quoted strings."""
    lines = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            lines.append("")
            continue
        lines.append(re.sub(r";\s*#.*$", ";", line))
    code = "\n".join(lines)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', code)


def tcl84_violations(text: str) -> list[str]:
    """Names of Tcl 8.5+ constructs used in `text` (comments and quoted strings ignored)."""
    code = _code_only(text)
    return sorted(name for name, pattern in TCL84_FORBIDDEN.items() if pattern.search(code))


# ---------------------------------------------------------------------------------------------
# X509::extensions text
# ---------------------------------------------------------------------------------------------


def extensions_text(cert: x509.Certificate, *, use_openssl: bool = True) -> str:
    """What `X509::extensions` returns for `cert`: openssl's text (our rendering only when told)."""
    if not use_openssl:
        return render_extensions(cert)
    if shutil.which("openssl") is None:
        raise RuntimeError(
            "the iRule tests need the openssl CLI (X509::extensions is its text): install openssl, "
            "e.g. apt-get install openssl"
        )
    return _openssl_extensions(cert.public_bytes(serialization.Encoding.DER))


@functools.lru_cache(maxsize=256)
def _openssl_extensions(der: bytes) -> str:
    """The "X509v3 extensions:" block of `openssl x509 -text`, dedented to column 0.

    The block runs to the certificate's own "Signature Algorithm:" line (the last one), so text
    a SAN smuggles in with embedded newlines stays in, as it would on the BIG-IP.
    """
    out = subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-noout", "-text"],
        input=der,
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8", "replace")
    lines = out.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "X509v3 extensions:"), None)
    if start is None:
        return NO_EXTENSIONS
    ends = [i for i, line in enumerate(lines) if re.match(r"^ {4}Signature Algorithm:", line) and i > start]
    block = lines[start : ends[-1] if ends else len(lines)]
    indent = len(block[0]) - len(block[0].lstrip())
    return "\n".join(line[min(indent, len(line) - len(line.lstrip())) :] for line in block)


_KEY_USAGE = (
    ("digital_signature", "Digital Signature"),
    ("content_commitment", "Non Repudiation"),
    ("key_encipherment", "Key Encipherment"),
    ("data_encipherment", "Data Encipherment"),
    ("key_agreement", "Key Agreement"),
    ("key_cert_sign", "Certificate Sign"),
    ("crl_sign", "CRL Sign"),
)
_EKU = {
    ExtendedKeyUsageOID.SERVER_AUTH: "TLS Web Server Authentication",
    ExtendedKeyUsageOID.CLIENT_AUTH: "TLS Web Client Authentication",
    ExtendedKeyUsageOID.CODE_SIGNING: "Code Signing",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "E-mail Protection",
    ExtendedKeyUsageOID.TIME_STAMPING: "Time Stamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSP Signing",
}


def _hex(data: bytes) -> str:
    return ":".join(f"{b:02X}" for b in data)


def _general_name(name: x509.GeneralName) -> str:
    """One SAN entry as OpenSSL 3 prints it (GENERAL_NAME_print)."""
    if isinstance(name, x509.DNSName):
        return f"DNS:{name.value}"
    if isinstance(name, x509.UniformResourceIdentifier):
        return f"URI:{name.value}"
    if isinstance(name, x509.RFC822Name):
        return f"email:{name.value}"
    if isinstance(name, x509.IPAddress):
        ip = name.value
        if isinstance(ip, ipaddress.IPv6Address):
            groups = [int.from_bytes(ip.packed[i : i + 2], "big") for i in range(0, 16, 2)]
            return "IP Address:" + ":".join(f"{g:X}" for g in groups)
        return f"IP Address:{ip}"
    if isinstance(name, x509.DirectoryName):
        parts = [f"{a.rfc4514_attribute_name}={a.value}".replace("/", "\\/") for a in name.value]
        return "DirName:/" + "/".join(parts)
    if isinstance(name, x509.RegisteredID):
        return f"Registered ID:{name.value.dotted_string}"
    return "othername:<unsupported>"


def _extension_value(ext: x509.Extension[x509.ExtensionType]) -> tuple[str, str]:
    """(OpenSSL extension name, one-line value) for the extensions our certificates carry."""
    value = ext.value
    if isinstance(value, x509.BasicConstraints):
        text = "CA:TRUE" if value.ca else "CA:FALSE"
        if value.path_length is not None:
            text += f", pathlen:{value.path_length}"
        return "X509v3 Basic Constraints", text
    if isinstance(value, x509.KeyUsage):
        bits = [label for field, label in _KEY_USAGE if getattr(value, field)]
        if value.key_agreement:
            bits += [
                label
                for field, label in (("encipher_only", "Encipher Only"), ("decipher_only", "Decipher Only"))
                if getattr(value, field)
            ]
        return "X509v3 Key Usage", ", ".join(bits)
    if isinstance(value, x509.ExtendedKeyUsage):
        return "X509v3 Extended Key Usage", ", ".join(_EKU.get(o, o.dotted_string) for o in value)
    if isinstance(value, x509.SubjectKeyIdentifier):
        return "X509v3 Subject Key Identifier", _hex(value.digest)
    if isinstance(value, x509.AuthorityKeyIdentifier):
        return "X509v3 Authority Key Identifier", _hex(value.key_identifier or b"")
    if isinstance(value, x509.SubjectAlternativeName):
        return "X509v3 Subject Alternative Name", ", ".join(_general_name(n) for n in value)
    return ext.oid.dotted_string, _hex(value.public_bytes())


def render_extensions(cert: x509.Certificate) -> str:
    """The extensions block in OpenSSL's format, from `cryptography` (no openssl needed)."""
    if len(cert.extensions) == 0:
        return NO_EXTENSIONS
    lines = ["X509v3 extensions:"]
    for ext in cert.extensions:
        name, value = _extension_value(ext)
        lines.append(f"    {name}: {'critical' if ext.critical else ''}")
        lines.append(f"        {value}")  # embedded newlines stay raw, as openssl prints them
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# X509::issuer text
# ---------------------------------------------------------------------------------------------

_QUOTED = re.compile(r'[,+"\\<>;]|^[# ]| $')


def issuer_text(cert: x509.Certificate, style: str = "openssl") -> str:
    """What `X509::issuer` returns for `cert` on TMOS 13.0+ ("openssl") or before ("rfc2253")."""
    if style == "rfc2253":
        return cert.issuer.rfc4514_string()
    if style != "openssl":
        raise ValueError(f"issuer style {style!r}: use openssl or rfc2253")
    parts = []
    for rdn in cert.issuer.rdns:
        for attr in rdn:
            value = str(attr.value)
            # In quotes, OpenSSL still escapes a quote and a backslash.
            quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            shown = quoted if _QUOTED.search(value) else value
            parts.append(f"{attr.rfc4514_attribute_name}={shown}")
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------
# The harness
# ---------------------------------------------------------------------------------------------

_STUBS = r"""
namespace eval ::SSL {}
namespace eval ::X509 {}
namespace eval ::IP {}
namespace eval ::TCP {}
namespace eval ::__h {}

proc when {event args} {
    if {[llength $args] < 1} { error "when $event: no body" }
    set ::__h::events($event) [lindex $args end]
}
proc unknown {args} { error "not a stubbed iRule command: [lindex $args 0]" }

proc ::__h::only_in {cmd events} {
    if {[lsearch -exact $events $::__h::event] < 0} {
        error "$cmd is not valid in $::__h::event (harness allows: $events)"
    }
}
set ::__h::ssl_events {CLIENTSSL_CLIENTCERT CLIENTSSL_HANDSHAKE CLIENT_DATA HTTP_REQUEST}

proc ::SSL::cert {what} {
    ::__h::only_in SSL::cert $::__h::ssl_events
    if {$what eq "count"} { return $::__h::cert_count }
    if {[string is integer -strict $what] && $what >= 0 && $what < $::__h::cert_count} {
        return "__h_cert$what"
    }
    return ""
}
proc ::SSL::verify_result {} {
    ::__h::only_in SSL::verify_result $::__h::ssl_events
    return $::__h::verify_result
}
proc ::X509::extensions {cert} {
    if {![info exists ::__h::extensions($cert)]} {
        error "X509::extensions: invalid certificate \"$cert\""
    }
    return $::__h::extensions($cert)
}
proc ::X509::issuer {cert} {
    if {![info exists ::__h::issuer($cert)]} {
        error "X509::issuer: invalid certificate \"$cert\""
    }
    return $::__h::issuer($cert)
}
proc ::IP::client_addr {} { return $::__h::client_addr }
proc ::TCP::client_port {} { return $::__h::client_port }
proc log {args} {
    if {[llength $args] < 1 || [llength $args] > 2} { error "usage: log ?facility? message" }
    lappend ::__h::log [lindex $args end]
}
proc reject {} { set ::__h::rejected 1 }
proc snat {addr} {
    ::__h::only_in snat {LB_SELECTED}
    lappend ::__h::snat $addr
}
proc snatpool {name args} {
    ::__h::only_in snatpool {LB_SELECTED}
    if {[llength $args] != 0} { error "snatpool: only \"snatpool <name>\" is stubbed" }
    if {[lsearch -exact $::__h::snat_pools $name] < 0} { error "snatpool: no SNAT pool \"$name\"" }
    lappend ::__h::snatpool $name
}

proc ::__h::records {dg} {
    set i [lsearch -exact $::__h::dg_names $dg]
    if {$i < 0} { error "data group \"$dg\" does not exist" }
    return ::__h::dg$i
}
proc ::__h::hit {item op key} {
    switch -- $op {
        equals { return [expr {$item eq $key}] }
        starts_with { return [string equal -length [string length $key] $key $item] }
        ends_with { return [expr {[string range $item end-[expr {[string length $key] - 1}] end] eq $key}] }
        contains { return [expr {[string first $key $item] >= 0}] }
    }
    error "class match: operator \"$op\" not stubbed"
}
proc class {sub args} {
    switch -- $sub {
        exists {
            return [expr {[lsearch -exact $::__h::dg_names [lindex $args 0]] >= 0}]
        }
        lookup {
            if {[llength $args] != 2} { error "usage: class lookup <item> <class>" }
            upvar #0 [::__h::records [lindex $args 1]] recs
            set item [lindex $args 0]
            if {[info exists recs($item)]} { return $recs($item) }
            return ""
        }
        match {
            set opt ""
            if {[string match -* [lindex $args 0]] && [llength $args] == 4} {
                set opt [lindex $args 0]
                set args [lrange $args 1 end]
            }
            if {[llength $args] != 3} { error "usage: class match ?-value|-name? <item> <op> <class>" }
            foreach {item op dg} $args break
            upvar #0 [::__h::records $dg] recs
            foreach key [lsort [array names recs]] {
                if {[::__h::hit $item $op $key]} {
                    switch -- $opt {
                        "" { return 1 }
                        -value { return $recs($key) }
                        -name { return $key }
                        default { error "class match: option $opt not stubbed" }
                    }
                }
            }
            if {$opt eq ""} { return 0 }
            return ""
        }
    }
    error "class $sub: not stubbed"
}
"""


@dataclass(frozen=True)
class Outcome:
    """What one simulated connection did."""

    rejected: bool
    snat_calls: tuple[str, ...]
    snatpool_calls: tuple[str, ...]
    logs: tuple[str, ...]
    events: tuple[str, ...]  # the events whose handlers ran, in order
    error: str | None = None  # a Tcl runtime error: the BIG-IP resets the connection

    @property
    def allowed(self) -> bool:
        """Reached the pool: LB_SELECTED ran, nothing rejected, no runtime error."""
        return not self.rejected and self.error is None and "LB_SELECTED" in self.events

    @property
    def snatpool(self) -> str | None:
        return self.snatpool_calls[-1] if self.snatpool_calls else None


class IRule:
    """An iRule text plus the string data groups it reads ({full path: {name: data}}) and the
    SNAT pools that exist on the device ({full path: addresses})."""

    def __init__(
        self,
        text: str,
        data_groups: Mapping[str, Mapping[str, str]],
        snat_pools: Mapping[str, Sequence[str]] | None = None,
    ):
        self.text = text
        self.data_groups = {name: dict(records) for name, records in data_groups.items()}
        self.snat_pools = {name: tuple(members) for name, members in (snat_pools or {}).items()}

    def connect(
        self,
        cert: x509.Certificate | None,
        *,
        chain: Sequence[x509.Certificate] = (),
        verify_result: int = 0,
        events: Sequence[str] = DEFAULT_EVENTS,
        client: tuple[str, int] = ("10.244.1.17", 40312),
        extensions: str | None = None,
        issuer_style: str = "openssl",
        issuer: str | None = None,
        stop_on_reject: bool = True,
    ) -> Outcome:
        """One client connection presenting `cert` (then `chain`); None: no certificate.

        `extensions` and `issuer` override the X509::extensions and X509::issuer texts of `cert`;
        `issuer_style` picks the TMOS version's X509::issuer format (see `issuer_text`). After a
        `reject` the
        connection is gone, so later events do not run unless `stop_on_reject=False`.
        """
        tcl = _interpreter()
        certs = [] if cert is None else [cert, *chain]
        tcl.call("set", "::__h::cert_count", len(certs))
        tcl.call("set", "::__h::verify_result", verify_result)
        tcl.call("set", "::__h::client_addr", client[0])
        tcl.call("set", "::__h::client_port", client[1])
        for i, c in enumerate(certs):
            text = extensions if (i == 0 and extensions is not None) else extensions_text(c)
            tcl.call("set", f"::__h::extensions(__h_cert{i})", text)
            named = issuer if (i == 0 and issuer is not None) else issuer_text(c, issuer_style)
            tcl.call("set", f"::__h::issuer(__h_cert{i})", named)
        tcl.call("set", "::__h::dg_names", tuple(self.data_groups))
        tcl.call("set", "::__h::snat_pools", tuple(self.snat_pools))
        for i, records in enumerate(self.data_groups.values()):
            tcl.call("array", "set", f"::__h::dg{i}", tuple(x for kv in records.items() for x in kv))
        tcl.eval(self.text)
        ran: list[str] = []
        error = None
        for event in events:
            if tcl.call("info", "exists", f"::__h::events({event})") in (0, "0"):
                continue
            tcl.call("set", "::__h::event", event)
            ran.append(event)
            code = tcl.eval(f"catch {{uplevel #0 $::__h::events({event})}} ::__h::result")
            if int(code) == 1:
                error = f"{event}: {tcl.getvar('::__h::result')}"
                break
            if stop_on_reject and tcl.getvar("::__h::rejected") in (1, "1"):
                break
        return Outcome(
            rejected=tcl.getvar("::__h::rejected") in (1, "1"),
            snat_calls=tuple(str(s) for s in tcl.splitlist(tcl.getvar("::__h::snat"))),
            snatpool_calls=tuple(str(s) for s in tcl.splitlist(tcl.getvar("::__h::snatpool"))),
            logs=tuple(str(s) for s in tcl.splitlist(tcl.getvar("::__h::log"))),
            events=tuple(ran),
            error=error,
        )


def _interpreter() -> tkinter.Tk:
    """A fresh Tcl interpreter per connection (iRule variables are connection-scoped)."""
    tcl = tkinter.Tcl()
    tcl.eval(_STUBS)
    for cmd in TCL85_COMMANDS:
        if tcl.eval(f"info commands ::{cmd}"):
            tcl.call("rename", f"::{cmd}", f"::__h::tcl86_{cmd}")
    tcl.call("set", "::__h::rejected", 0)
    tcl.call("set", "::__h::snat", "")
    tcl.call("set", "::__h::snatpool", "")
    tcl.call("set", "::__h::log", "")
    tcl.call("set", "::__h::event", "")
    return tcl
