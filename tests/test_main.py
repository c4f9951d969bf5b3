"""__main__.py, the real entry point, under the mock engine with config as Pulumi passes it."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from tests.support import ROOT, raw_stack
from tools import engine, render, sdk_internals


def _run_main(values: dict[str, Any], secret_keys: list[str]) -> engine.Run:
    # Pulumi hands structured values to the program as JSON text, scalars as plain strings.
    flat = {f"cpaas:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}

    def program() -> None:
        sdk_internals.set_all_config(flat, [f"cpaas:{k}" for k in secret_keys])
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    return engine.run(program, stack="dev")


def test_main_reads_the_dev_stack_config_once_and_builds_the_unit() -> None:
    run = _run_main(raw_stack("dev"), [])
    types = {r.type for r in run.registrations}
    assert "cpaas:unit:AtomicUnit" in types
    assert "cpaas:pki:Pki" in types


def test_main_reads_secrets_with_require_secret_and_keeps_them_secret() -> None:
    values: dict[str, Any] = raw_stack("prod")
    refs = {"example-bank/aks-clusters/prod-mel": {"kubeconfig": "<kubeconfig>"}}
    secrets = {
        "bigipPassword-aws-syd": "pw1",
        "bigipPassword-azure-mel": "pw2",
        "bigipPassword-onprem-syd": "pw3",
        "bigipPassword-gslb": "pw4",
        "kubeconfig-aws-syd": "kc1",
        "kubeconfig-onprem-syd": "kc2",
        "kubeconfig-onprem-syd-b": "kc3",
        "cis-kubeconfig-onprem-syd-b": "kc3-read-only",
    }
    flat = {f"cpaas:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    flat |= {f"cpaas:{k}": v for k, v in secrets.items()}

    def program() -> None:
        sdk_internals.set_all_config(flat, [f"cpaas:{k}" for k in secrets])
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    run = engine.run(program, stack="prod", mocks=engine.StateMocks(stack_outputs=refs))
    text = json.dumps([r.as_json() for r in run.registrations])
    for secret in secrets.values():
        assert f'"{secret}"' not in text
    login = [r for r in run.registrations if r.name.endswith("-cis-login")]
    assert login and all(r.inputs["stringData"]["password"] == "[secret]" for r in login)


def test_fails_with_one_line_per_config_error_and_no_traceback_from_main() -> None:
    values = raw_stack("dev")
    values["units"][0]["network"]["podCidr"] = "10.42.0.1/16"
    with pytest.raises(pulumi.RunError) as caught:
        _run_main(values, [])
    assert str(caught.value) == (
        "invalid stack config: 1 config error(s) (the cross-field rules run once these are fixed)\n"
        "cpaas:units[0].network.podCidr: 10.42.0.1/16 has host bits set; use 10.42.0.0/16"
    )


def test_fails_when_a_required_secret_is_not_set() -> None:
    values = raw_stack("prod")
    with pytest.raises(pulumi.ConfigMissingError):
        _run_main(values, [])


# ---------------------------------------------------------------------------------------------
# Deploy and render refuse the same config, with the same lines (one reader: tools.stackfile)
# ---------------------------------------------------------------------------------------------

PROD_SECRETS = (
    "bigipPassword-aws-syd",
    "bigipPassword-azure-mel",
    "bigipPassword-onprem-syd",
    "bigipPassword-gslb",
    "kubeconfig-aws-syd",
    "kubeconfig-onprem-syd",
    "kubeconfig-onprem-syd-b",
    "cis-kubeconfig-onprem-syd-b",
)
IMPORTED_ROOT = {"source": "imported", "certKey": "rootCert", "privateKeySecret": "rootKey"}


def _prod_entries() -> dict[str, Any]:
    """Pulumi.prod.yaml's config on an imported root (so it names a certificate key), with every
    secret (encrypted) and the root certificate set."""
    entries: dict[str, Any] = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    entries["cpaas:pki"]["root"] = dict(IMPORTED_ROOT)
    entries |= {f"cpaas:{k}": {"secure": f"v1:cipher-of-{k}"} for k in [*PROD_SECRETS, "rootKey"]}
    entries["cpaas:rootCert"] = engine.mock_pem("CERTIFICATE", "root")
    return entries


def _refused_by_render(entries: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    root = tmp_path / "project"
    root.mkdir()
    (root / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (root / "Pulumi.prod.yaml").write_text(yaml.safe_dump({"config": entries}, sort_keys=False))
    monkeypatch.setattr(render, "ROOT", root)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = render.main(["--stack", "prod", "--out", str(tmp_path / "out"), "--no-validate"])
    lines = err.getvalue().splitlines()
    assert code == 2, lines
    assert lines[-1].startswith("render: stack prod has ") and lines[-1].endswith("; nothing written")
    return lines[:-1]


def _refused_by_main(entries: dict[str, Any]) -> list[str]:
    # As the Pulumi CLI hands config over: text as is, other values as JSON, secrets decrypted
    # and listed as secret keys.
    flat: dict[str, str] = {}
    secret: list[str] = []
    for key, value in entries.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            flat[key] = f"decrypted {key}"
            secret.append(key)
        else:
            flat[key] = value if isinstance(value, str) else json.dumps(value)
    refs = {"example-bank/aks-clusters/prod-mel": {"kubeconfig": "<kubeconfig>"}}

    def program() -> None:
        sdk_internals.set_all_config(flat, secret)
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    with pytest.raises(pulumi.RunError) as caught:
        engine.run(program, stack="prod", mocks=engine.StateMocks(stack_outputs=refs))
    head, *lines = str(caught.value).splitlines()
    assert head.startswith("invalid stack config: ")
    return lines


def _rename(entries: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    return {(new if k == old else k): v for k, v in entries.items()}


CASES = {
    # A typo in an ESC environment: the GSLB config would silently vanish (and its AS3 with it).
    "unknown-top-level-key": lambda e: _rename(e, "cpaas:gslb", "cpaas:gslbb"),
    "secret-in-plain-text": lambda e: {**e, "cpaas:bigipPassword-aws-syd": "hunter2"},
    "namespace-typo": lambda e: _rename(e, "cpaas:addressPlan", "cpas:addressPlan"),
    "certificate-without-pem": lambda e: {**e, "cpaas:rootCert": "not a certificate"},
    "certificate-as-secret": lambda e: {**e, "cpaas:rootCert": {"secure": "v1:cipher"}},
    "private-key-as-certificate": lambda e: {
        **e,
        "cpaas:rootCert": engine.mock_pem("CERTIFICATE", "x") + engine.mock_pem("PRIVATE KEY", "x"),
    },
}
EXPECTED = {
    "unknown-top-level-key": "cpaas:gslbb: unknown config key; nothing in the stack refers to it",
    "secret-in-plain-text": "pulumi config set --secret -s prod cpaas:bigipPassword-aws-syd",
    "namespace-typo": "cpas:addressPlan: namespace cpas is not cpaas",
    "certificate-without-pem": "cpaas:rootCert: 'not a certificate' holds no PEM certificate",
    "certificate-as-secret": "cpaas:rootCert: a certificate set as a secret",
    "private-key-as-certificate": "holds a PRIVATE KEY block; this key takes certificates only",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fails_in_deploy_exactly_as_in_the_render_for_each_config_key_problem(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = CASES[case](_prod_entries())
    from_main = _refused_by_main(entries)
    assert from_main == _refused_by_render(entries, tmp_path, monkeypatch)
    assert [line for line in from_main if EXPECTED[case] in line], from_main
    if case == "unknown-top-level-key":  # without gslb, its device's keys are named by nothing
        assert [line.split(":")[1] for line in from_main] == ["bigipPassword-gslb", "gslbb"]
    else:
        assert len(from_main) == 1, from_main


def test_fails_in_deploy_with_every_problem_of_the_config_at_once_as_the_render_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _prod_entries()
    combined = ("unknown-top-level-key", "secret-in-plain-text", "namespace-typo", "certificate-without-pem")
    for case in combined:
        entries = CASES[case](entries)
    entries["cpaas:units"] = copy.deepcopy(entries["cpaas:units"])
    entries["cpaas:units"][0]["network"]["podCidr"] = "10.10.64.1/18"
    from_main = _refused_by_main(entries)
    assert from_main == _refused_by_render(entries, tmp_path, monkeypatch)
    assert [line.split(":", 2)[1] for line in from_main] == [
        "addressPlan",  # the namespace first, then the other keys by name, then the values
        "bigipPassword-aws-syd",
        "bigipPassword-gslb",
        "gslbb",
        "rootCert",
        "units[0].network.podCidr",
    ], from_main


def test_main_and_the_render_accept_the_prod_config_with_every_key_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _prod_entries()
    root = tmp_path / "project"
    root.mkdir()
    (root / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (root / "Pulumi.prod.yaml").write_text(yaml.safe_dump({"config": entries}, sort_keys=False))
    monkeypatch.setattr(render, "ROOT", root)
    with contextlib.redirect_stdout(io.StringIO()):
        code = render.main(["--stack", "prod", "--out", str(tmp_path / "out"), "--no-validate"])
    assert code == 0
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "is not in the stack file" not in summary  # every secret and certificate was found
