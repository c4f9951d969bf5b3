"""Secrets stay secret, with real values flowing: the tls test double issues real keys, and the
deploy inputs are distinctive passwords and kubeconfigs.

For each stack, `build` runs under `tests.tlsdouble.TlsDouble`; the double sees (unwrapped) what
the providers would receive, which shows the real values do reach the cacerts Secret, the BIG-IP
key, the TLS Secrets and the providers. None of them may appear in plaintext in `resources.json`,
any rendered file, the non-secret stack outputs or anything logged or printed; every stack output
that carries one is a Pulumi secret. `python -m tools.render` itself is run with the double too.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
from cryptography.hazmat.primitives import serialization

from components import config
from components.platform import DeployInputs, build
from tests import pkitools, tlsdouble
from tests.support import stack
from tools import engine, render

PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n")
KEY_FORMATS = (
    serialization.PrivateFormat.TraditionalOpenSSL,
    serialization.PrivateFormat.PKCS8,
    serialization.PrivateFormat.OpenSSH,
)


def distinctive(key: str) -> str:
    """A value for secret config key `key` that cannot occur by accident."""
    if key.startswith("kubeconfig"):
        return (
            "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n"
            f"    token: kc-token-{key}-Q7x9Vb2Lw\n"
        )
    return f"pw-{key}-Zr4!t8Kq"


def needles_of(value: str) -> list[str]:
    """Substrings that betray `value`: the value, and each of its long lines (PEM body lines,
    a kubeconfig's token line), since JSON and YAML escape the newlines between them."""
    lines = [line.strip() for line in value.splitlines() if len(line.strip()) >= 24]
    return [value, *lines]


def key_needles(key: Any, public: str) -> list[str]:
    """The PEM body lines of `key` (PKCS#1/SEC1, PKCS#8, OpenSSH) that betray the private key:
    lines also found in `public` (certificates, CSRs, public keys: a SEC1 or OpenSSH key embeds
    its public point) are public and may appear anywhere."""
    needles: list[str] = []
    for fmt in KEY_FORMATS:
        with contextlib.suppress(ValueError):
            pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()
            needles += [
                line for line in pem.splitlines() if not line.startswith("-----") and line not in public
            ]
    return needles


def public_material(double: tlsdouble.TlsDouble) -> str:
    texts = [pkitools.pem(cert) for cert in double.certs.values()]
    texts += [csr.public_bytes(serialization.Encoding.PEM).decode() for csr in double.csrs.values()]
    for key in double.keys.values():
        public = key.public_key()
        texts.append(
            public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode()
        )
        texts.append(
            public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
        )
    return "\n".join(texts)


@dataclass
class Evaluated:
    stack: config.StackConfig
    double: tlsdouble.TlsDouble
    run: engine.Run
    raw_outputs: dict[str, Any]  # stack outputs as resolved, secrets included
    secrets: dict[str, str]  # what must never leak: label -> value
    files: dict[str, str]  # render_files' output
    printed: str  # everything logged or printed while building and rendering
    needles: dict[str, list[str]] = field(default_factory=dict)

    def leaks(self, haystack: str) -> list[str]:
        return sorted(label for label, found in self.needles.items() if any(n in haystack for n in found))


@contextlib.contextmanager
def captured() -> Iterator[io.StringIO]:
    """stdout, stderr and every log record (root logger, DEBUG) into one buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def evaluate(name: str) -> Evaluated:
    stack_config = stack(name)
    secrets = {key: distinctive(key) for key in stack_config.secret_keys()}
    refs = {
        u.cluster.stack: {u.cluster.output: distinctive(f"kubeconfig-stackref-{u.name}")}
        for u in stack_config.units
        if isinstance(u.cluster, config.StackReferenceCluster)
    }
    k3d = {
        f"{u.name}-cluster-kubeconfig": distinctive(f"kubeconfig-k3d-{u.name}")
        for u in stack_config.units
        if isinstance(u.cluster, config.K3dCluster)
    }
    double = tlsdouble.TlsDouble(stack_outputs=refs, command_stdout=k3d)
    inputs = DeployInputs(
        secrets={k: pulumi.Output.secret(v) for k, v in secrets.items()},
        values={
            k: f"-----BEGIN CERTIFICATE-----\nplain {k}\n-----END CERTIFICATE-----\n"
            for k in stack_config.plain_keys()
        },
        files={
            path: f"-----BEGIN CERTIFICATE-----\nplain {path}\n-----END CERTIFICATE-----\n"
            for path in stack_config.trust_files()
        },
    )
    raw_outputs: dict[str, Any] = {}

    def program() -> dict[str, Any]:
        outputs = build(stack_config, inputs)
        for key, value in outputs.items():
            pulumi.Output.from_input(value).apply(lambda v, key=key: raw_outputs.__setitem__(key, v))
        return outputs

    with captured() as printed:
        run = engine.run(program, stack=name, mocks=double)
        files = render.render_files(run, stack_config, []).files
    every = {
        **secrets,
        **{f"stackref {k}": v for k, v in _flat(refs)},
        **{f"k3d {k}": v for k, v in k3d.items()},
    }
    evaluated = Evaluated(stack_config, double, run, raw_outputs, every, files, printed.getvalue())
    evaluated.needles = {label: needles_of(value) for label, value in every.items()}
    public = public_material(double)
    evaluated.needles |= {
        f"private key {name}": key_needles(key, public) for name, key in double.keys.items()
    }
    return evaluated


def _flat(refs: dict[str, dict[str, str]]) -> list[tuple[str, str]]:
    return [
        (f"{stack_name}:{output}", value)
        for stack_name, outputs in refs.items()
        for output, value in outputs.items()
    ]


@pytest.fixture(scope="module", params=["dev", "prod"])
def evaluated(request: pytest.FixtureRequest) -> Evaluated:
    return evaluate(request.param)


# ---------------------------------------------------------------------------------------------
# The real values do flow (otherwise the leak checks below would prove nothing)
# ---------------------------------------------------------------------------------------------


def test_the_double_issues_real_keys_and_the_program_feeds_real_secrets_to_the_providers(evaluated) -> None:
    double = evaluated.double
    assert double.keys and len(double.keys) == len(double.of_type(tlsdouble.PRIVATE_KEY))
    seen = json.dumps({name: inputs for name, (_, inputs) in double.seen.items()})
    # Each private key the double made reaches at least one consumer in PEM form (a CSR, a
    # signing CA, the cacerts Secret, the BIG-IP key, a TLS Secret).
    for name, needles in evaluated.needles.items():
        if name.startswith("private key "):
            assert any(n in seen for n in needles), f"{name} never reached a resource"
    for label, value in evaluated.secrets.items():
        if "stackref" not in label:  # a StackReference's output is read, not passed to a resource
            assert json.dumps(value)[1:-1] in seen, f"{label} never reached a resource"


def test_the_cacerts_secret_carries_the_real_intermediate_key_marked_secret(evaluated) -> None:
    secrets = evaluated.double.of_type("kubernetes:core/v1:Secret")
    for unit in evaluated.stack.units:
        data = secrets[f"{unit.name}-mesh-cacerts"]["stringData"]
        key = serialization.load_pem_private_key(data["ca-key.pem"].encode(), None)
        intermediate = evaluated.double.certs[f"pki-{unit.name}-intermediate"]
        assert key.public_key() == intermediate.public_key()
        assert data["ca-cert.pem"] == pkitools.pem(intermediate)
        recorded = evaluated.run.get(f"{unit.name}-mesh-cacerts").inputs["stringData"]
        assert recorded["ca-key.pem"] == engine.SECRET


# ---------------------------------------------------------------------------------------------
# ... and never leak
# ---------------------------------------------------------------------------------------------


def test_no_private_key_password_or_kubeconfig_is_in_resources_json(evaluated) -> None:
    assert evaluated.leaks(evaluated.files["resources.json"]) == []
    assert "PRIVATE KEY" not in evaluated.files["resources.json"]


def test_no_private_key_password_or_kubeconfig_is_in_any_rendered_file(evaluated) -> None:
    leaking = {path: evaluated.leaks(text) for path, text in evaluated.files.items()}
    assert {path: found for path, found in leaking.items() if found} == {}
    assert [
        path for path, text in evaluated.files.items() if re.search(r"BEGIN [A-Z ]*PRIVATE KEY", text)
    ] == []


def test_no_private_key_password_or_kubeconfig_is_in_a_plain_stack_output(evaluated) -> None:
    plain = {k: v for k, v in evaluated.run.outputs.items() if k not in evaluated.run.secret_outputs}
    assert plain, "expected some non-secret outputs (environment, rootCertPem, units)"
    assert evaluated.leaks(json.dumps(plain)) == []


def test_every_stack_output_that_carries_a_secret_is_a_pulumi_secret(evaluated) -> None:
    carriers = {
        key for key, value in evaluated.raw_outputs.items() if evaluated.leaks(json.dumps(value, default=str))
    }
    assert carriers <= evaluated.run.secret_outputs
    assert "kubeconfigs" in carriers  # the kubeconfigs output does carry them (not vacuous)
    assert evaluated.run.outputs["kubeconfigs"] == engine.SECRET


def test_nothing_secret_is_logged_or_printed(evaluated) -> None:
    assert evaluated.leaks(evaluated.printed) == []


# ---------------------------------------------------------------------------------------------
# The CLI: python -m tools.render with real PEMs
# ---------------------------------------------------------------------------------------------


def test_the_render_cli_writes_and_prints_no_private_key_or_secret_placeholder(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    doubles: list[tlsdouble.TlsDouble] = []

    def make_double(**kwargs: Any) -> tlsdouble.TlsDouble:
        doubles.append(tlsdouble.TlsDouble(**kwargs))
        return doubles[-1]

    monkeypatch.setattr(render.engine, "StateMocks", make_double)
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "prod"
    assert render.main(["--stack", "prod", "--out", str(out), "--no-validate"]) == 0
    (double,) = doubles
    assert len(double.keys) >= 4  # root + 3 intermediates, and the leaves
    public = public_material(double)
    needles = [n for key in double.keys.values() for n in key_needles(key, public)]
    printed = capsys.readouterr()
    texts = {str(p.relative_to(out)): p.read_text() for p in out.rglob("*") if p.is_file()}
    texts |= {"<stdout>": printed.out, "<stderr>": printed.err, "<log>": caplog.text}
    assert {name for name, text in texts.items() if any(n in text for n in needles)} == set()
    assert {name for name, text in texts.items() if "PRIVATE KEY" in text or "<secret " in text} == set()
    # The real certificates are there, readable (e.g. the BIG-IP egress identity's certificate).
    issued = {pkitools.pem(cert).strip() for cert in double.certs.values()}
    shown = {
        block.strip() for text in texts.values() for block in PEM_CERT.findall(text.replace("\\n", "\n"))
    }
    assert issued & shown
