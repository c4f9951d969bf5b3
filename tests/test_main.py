"""__main__.py, the real entry point, under the mock engine with config as Pulumi passes it."""

from __future__ import annotations

import json
import runpy
from typing import Any

import pulumi
import pytest
from pulumi.runtime import config as runtime_config

from tests.support import ROOT, raw_stack
from tools import engine


def _run_main(values: dict[str, Any], secret_keys: list[str]) -> engine.Run:
    # Pulumi hands structured values to the program as JSON text, scalars as plain strings.
    flat = {f"cpaas:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}

    def program() -> None:
        runtime_config.set_all_config(flat, [f"cpaas:{k}" for k in secret_keys])
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
    }
    plain = {
        k: engine.mock_pem("CERTIFICATE", k)
        for k in ("bigipCert-aws-syd", "bigipCert-azure-mel", "bigipCert-onprem-syd", "bigipCert-gslb")
    }
    flat = {f"cpaas:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    flat |= {f"cpaas:{k}": v for k, v in {**secrets, **plain}.items()}

    def program() -> None:
        runtime_config.set_all_config(flat, [f"cpaas:{k}" for k in secrets])
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
        "invalid stack config:\n"
        "cpaas:units[0].network.podCidr: 10.42.0.1/16 has host bits set; use 10.42.0.0/16"
    )


def test_fails_when_a_required_secret_is_not_set() -> None:
    values = raw_stack("prod")
    with pytest.raises(pulumi.ConfigMissingError):
        _run_main(values, [])
