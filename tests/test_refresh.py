"""The refresh model (tools/refresh.py): every provider's recorded configuration, and every local
command's, is usable before the program runs, on any checkout.

`pulumi refresh`, `pulumi destroy` and the workflows' `pulumi up --refresh` configure providers
from the state before (or without) running the program, so nothing recorded may name a file
the program writes, or one a fresh checkout lacks.
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pytest

from components import config, platform
from tests.support import ROOT, raw_stack
from tools import engine, refresh, sdk_internals

UNIT_STACK_REFS = {"example-bank/aks-clusters/prod-mel": {"kubeconfig": "<kubeconfig>"}}


def run_main(stack_name: str, preview: bool = False) -> tuple[engine.Run, set[Path]]:
    """__main__.py with the stack file's config as Pulumi passes it, every secret and
    certificate key it names set, and what it writes while it runs."""
    values: dict[str, Any] = raw_stack(stack_name)
    parsed = config.parse_stack(values)
    flat = {f"cpaas:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    flat |= {f"cpaas:{k}": f"<{k}>" for k in parsed.secret_keys()}
    flat |= {f"cpaas:{k}": engine.mock_pem("CERTIFICATE", k) for k in parsed.plain_keys()}

    def program() -> None:
        sdk_internals.set_all_config(flat, [f"cpaas:{k}" for k in parsed.secret_keys()])
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    with refresh.recording_writes() as written:
        run = engine.run(
            program, stack=stack_name, mocks=engine.StateMocks(stack_outputs=UNIT_STACK_REFS), preview=preview
        )
    return run, written


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_every_recorded_provider_and_command_input_is_usable_before_the_program_runs(
    stack_name: str, preview: bool
) -> None:
    run, written = run_main(stack_name, preview)
    checked = [r for r in run.registrations if refresh.CHECKED_TYPES.match(r.type)]
    assert {r.type for r in checked} >= {"pulumi:providers:kubernetes"}
    if stack_name == "prod":
        assert "pulumi:providers:f5bigip" in {r.type for r in checked}
    assert refresh.problems(run, ROOT, written) == []


def test_the_program_writes_nothing_into_the_checkout() -> None:
    _, written = run_main("prod")
    assert refresh.inside(ROOT, written) == []


def test_the_bigip_providers_name_committed_certificate_files_relative_to_the_project() -> None:
    run, _ = run_main("prod")
    providers = run.by_type("pulumi:providers:f5bigip")
    # Three unit BIG-IPs and the DNS device; a unit's BIG-IP has several providers (device.Login).
    assert len({reg.inputs["trustedCertPath"] for reg in providers}) == 4
    for reg in providers:
        path = reg.inputs["trustedCertPath"]
        assert not Path(path).is_absolute()
        assert (ROOT / path).read_text().startswith("-----BEGIN CERTIFICATE-----\n"), path


def test_fails_with_one_line_per_certificate_file_that_is_missing_or_holds_no_certificate(
    tmp_path: Path,
) -> None:
    stack = config.parse_stack(raw_stack("prod"))
    (tmp_path / "trust" / "prod").mkdir(parents=True)
    for path in stack.trust_files():
        (tmp_path / path).write_text((ROOT / path).read_text())
    assert platform.read_trust_files(stack, tmp_path)["trust/prod/bigip-gslb.pem"].startswith("-----BEGIN")
    (tmp_path / "trust/prod/bigip-gslb.pem").unlink()
    (tmp_path / "trust/prod/bigip-aws-syd.pem").write_text("not a certificate\n")
    with pytest.raises(config.ConfigError) as caught:
        platform.read_trust_files(stack, tmp_path)
    assert caught.value.lines == [
        "cpaas:units[0].bigip.trustedCertFile: trust/prod/bigip-aws-syd.pem holds no PEM certificate; "
        "put the BIG-IP's management certificate there (-----BEGIN CERTIFICATE-----)",
        "cpaas:gslb.dnsDevice.trustedCertFile: trust/prod/bigip-gslb.pem cannot be read (No such file "
        "or directory); commit the BIG-IP's management certificate (PEM) at that path in the project",
    ]


def test_fails_with_a_pointer_to_the_new_key_when_a_stack_still_names_trusted_cert_key() -> None:
    raw = raw_stack("prod")
    del raw["units"][0]["bigip"]["trustedCertFile"]
    raw["units"][0]["bigip"]["trustedCertKey"] = "bigipCert-aws-syd"
    with pytest.raises(config.ConfigError) as caught:
        config.parse_stack(raw)
    assert caught.value.lines == [
        "cpaas:units[0].bigip.trustedCertKey: replaced by trustedCertFile; commit the certificate "
        "(the value of that config key) as a PEM file and name its path in trustedCertFile, e.g. "
        'trust/prod/bigip-aws-syd.pem (README "The refresh model")'
    ]


# ---------------------------------------------------------------------------------------------
# The check itself
# ---------------------------------------------------------------------------------------------


def provider(inputs: dict[str, Any], type_: str = "pulumi:providers:f5bigip") -> engine.Registration:
    return engine.Registration(
        urn=f"urn:pulumi:test::cpaas::{type_}::p",
        type=type_,
        name="p",
        parent="",
        provider="",
        dependencies=[],
        custom=True,
        inputs=inputs,
    )


def check(
    inputs: dict[str, Any], written: set[Path] | None = None, type_: str = "pulumi:providers:f5bigip"
) -> list[str]:
    return refresh.problems(engine.Run([provider(inputs, type_)], {}, set()), ROOT, written or set())


def test_the_check_accepts_a_file_every_checkout_has() -> None:
    assert check({"trustedCertPath": "Pulumi.yaml", "address": "https://10.0.0.1"}) == []


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (str(ROOT / "Pulumi.yaml"), "is an absolute path"),
        ("../shared/docs/architecture.md", "leaves the project folder"),
        ("trust/no-such.pem", "does not exist in the project"),
        (".venv/pyvenv.cfg", "is git-ignored"),
    ],
)
def test_the_check_fails_a_path_a_fresh_checkout_elsewhere_lacks(value: str, why: str) -> None:
    [line] = check({"trustedCertPath": value})
    assert line.startswith(f"pulumi:providers:f5bigip p: trustedCertPath = {value!r} {why}")


def test_the_check_fails_a_path_the_program_writes_and_anything_under_a_folder_it_writes() -> None:
    assert check({"trustedCertPath": "Pulumi.yaml"}, written={ROOT / "Pulumi.yaml"}) == [
        "pulumi:providers:f5bigip p: trustedCertPath = 'Pulumi.yaml' is written by the program "
        "while it runs, so a refresh or destroy before it has none"
    ]
    assert len(check({"trustedCertPath": "tools/refresh.py"}, written={ROOT / "tools"})) == 1


def test_the_check_covers_local_commands_and_nested_inputs_but_not_content_or_secrets() -> None:
    assert check({"dir": "/tmp"}, type_="command:local:Command") != []
    assert check({"settings": {"pluginsPath": "/opt/x"}}, type_="pulumi:providers:kubernetes") != []
    assert check({"kubeconfig": "apiVersion: v1\nkind: Config\n"}, type_="pulumi:providers:kubernetes") == []
    assert check({"kubeconfig": '{"apiVersion": "v1"}'}, type_="pulumi:providers:kubernetes") == []
    assert check({"kubeconfig": engine.SECRET}, type_="pulumi:providers:kubernetes") == []
    assert check({"trustedCertPath": "/x"}, type_="kubernetes:core/v1:Secret") == []


def test_recording_sees_files_written_and_folders_made(tmp_path: Path) -> None:
    with refresh.recording_writes() as written:
        (tmp_path / "made").mkdir()
        (tmp_path / "made" / "a.pem").write_text("x")
        (tmp_path / "made" / "a.pem").read_text()
    assert written == {tmp_path / "made", tmp_path / "made" / "a.pem"}
