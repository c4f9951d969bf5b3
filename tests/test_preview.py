"""Preview mode: the program run as `pulumi preview` runs it for a new stack, where what only a
provider computes (PEMs, command output, a Release's status, ids) is unknown. The program must
neither crash nor branch on unknowns; validation checks what is known and lists the rest.
tests/test_awaits.py and tests/test_refresh.py run both modes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import run_build, stack
from tools import engine, render

# Where a new stack's preview cannot know the value: the digest of istiod's CA (a PEM the tls
# provider computes) and the Secrets holding PEMs (unknown, so their shape is unknown too).
UNKNOWN_IN = {
    "dev": [
        "helm/dev/istiod.yaml: podAnnotations.cpaas.io/cacerts-sha256",
        "k8s/dev/istio-system/secret-cacerts.yaml: stringData",
    ],
    "prod": sorted(
        [
            f"helm/{u}/istiod.yaml: podAnnotations.cpaas.io/cacerts-sha256"
            for u in ("aws-syd", "azure-mel", "onprem-syd", "onprem-syd-b")
        ]
        + ["k8s/onprem-syd-b/istio-system/secret-cacerts.yaml: stringData"]  # it serves no app of its own
        + [
            f"k8s/{u}/{ns}/secret-{name}.yaml: stringData"
            for u in ("aws-syd", "azure-mel", "onprem-syd")
            for ns, name in (
                ("istio-system", "cacerts"),
                ("istio-ingress", "bookinfo-tls"),
                ("nginx-ingress", "httpbin-tls"),
            )
        ]
        # The apps behind APM (issue 12): portal in aws-syd, teller in onprem-syd.
        + ["k8s/aws-syd/istio-ingress/secret-portal-tls.yaml: stringData"]
        + ["k8s/onprem-syd/istio-ingress/secret-teller-tls.yaml: stringData"]
    ),
}


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_dev_and_prod_render_in_preview_mode_with_no_violation_listing_what_is_unknown_until_deploy(
    name: str, schema_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / name
    code = render.main(
        ["--stack", name, "--preview", "--policy", "--schemas", str(schema_dir), "--out", str(out)]
    )
    text = capsys.readouterr().out
    assert code == 0, text
    assert "; 0 violation(s)\n" in text and "policy: 5 rules, 0 violation(s)\n" in text
    listed = [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("unknown until deploy")]
    assert listed == UNKNOWN_IN[name]
    summary = (out / "summary.md").read_text()
    assert f"Preview: {len(listed)} values unknown until deploy, not checked." in summary
    assert f"- unknown until deploy, not checked: {listed[0]}\n" in summary


def _unknown_or_equal(preview: Any, update: Any) -> bool:
    """The preview's value is the update's, except where it is unknown (a secret not known yet
    is "[secret]" whole)."""
    if preview in (engine.UNKNOWN, engine.SECRET):
        return True
    if isinstance(preview, dict) and isinstance(update, dict):
        return preview.keys() == update.keys() and all(
            _unknown_or_equal(preview[k], update[k]) for k in preview
        )
    if isinstance(preview, list) and isinstance(update, list):
        return len(preview) == len(update) and all(map(_unknown_or_equal, preview, update))
    return bool(preview == update)


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_the_program_does_not_branch_on_unknowns_a_preview_registers_what_an_update_does(
    name: str, request: pytest.FixtureRequest
) -> None:
    update = request.getfixturevalue(name)
    preview = run_build(stack(name), name, preview=True)
    assert [r.urn for r in sorted(preview.registrations, key=lambda r: r.urn)] == sorted(
        r.urn for r in update.registrations
    )
    known = update.by_urn()
    differ = [r.urn for r in preview.registrations if not _unknown_or_equal(r.inputs, known[r.urn].inputs)]
    assert differ == []
    unknown = [r.name for r in preview.registrations if engine.UNKNOWN in json.dumps(r.inputs)]
    assert unknown  # the check above compared something unknown
    # What only providers compute is unknown, and so is what is made of it.
    assert preview.outputs["rootCertPem"] == engine.UNKNOWN
    assert update.outputs["rootCertPem"] != engine.UNKNOWN


def test_the_mocks_answer_provider_computed_outputs_as_unknown_only_in_a_preview() -> None:
    import pulumi_tls as tls

    def program() -> dict[str, Any]:
        key = tls.PrivateKey("key", algorithm="ECDSA")
        return {"pem": key.public_key_pem, "id": key.id, "algorithm": key.algorithm}

    previewed = engine.run(program, preview=True)
    assert previewed.outputs == {"pem": engine.UNKNOWN, "id": engine.UNKNOWN, "algorithm": "ECDSA"}
    applied = engine.run(program)
    assert (
        applied.outputs["pem"].startswith("-----BEGIN PUBLIC KEY-----") and applied.outputs["id"] == "key-id"
    )
