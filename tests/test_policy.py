"""The policy pack's rules, called directly (building a PolicyPack would start a server)."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import pytest

from policy import pack, rules
from tools import engine


@pytest.fixture(scope="module")
def prod_resources(prod: engine.Run) -> list[rules.Resource]:
    return rules.from_render([r.as_json() for r in prod.registrations])


def _one(resources: list[rules.Resource], name: str) -> rules.Resource:
    [found] = [r for r in resources if r.name == name]
    return found


def _with(res: rules.Resource, **props: Any) -> rules.Resource:
    merged = copy.deepcopy(dict(res.props))
    merged.update(props)
    return rules.Resource(res.type, res.name, res.urn, merged, res.provider)


def test_the_rendered_prod_stack_complies_with_every_rule(prod_resources: list[rules.Resource]) -> None:
    assert rules.check(prod_resources) == []


def test_fails_a_chart_without_an_exact_version(prod_resources: list[rules.Resource]) -> None:
    istiod = _one(prod_resources, "aws-syd-mesh-istiod")
    for version in ("", "latest", "^1.30.0", "~1.30", "1.30.x", ">=1.30.0"):
        assert rules.pinned_charts_and_images(_with(istiod, version=version)), version
    assert rules.pinned_charts_and_images(istiod) == []


def test_fails_latest_or_untagged_images_in_values_and_workloads(
    prod_resources: list[rules.Resource],
) -> None:
    nginx = _one(prod_resources, "aws-syd-nginx-release")
    values = copy.deepcopy(dict(nginx.props["values"]))
    values["controller"]["image"]["tag"] = "latest"
    assert rules.pinned_charts_and_images(_with(nginx, values=values))
    deployment = rules.Resource(
        "kubernetes:apps/v1:Deployment",
        "d",
        "urn:d",
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}},
    )
    assert rules.pinned_charts_and_images(deployment) == [
        "spec.template.spec.containers[0].image 'nginx' has no tag; pin an exact tag or digest"
    ]
    pinned = copy.deepcopy(dict(deployment.props))
    pinned["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx@sha256:" + "a" * 64
    assert rules.pinned_charts_and_images(_with(deployment, **pinned)) == []


def test_fails_a_bigip_provider_that_skips_tls_verification_or_sends_telemetry(
    prod_resources: list[rules.Resource],
) -> None:
    provider = _one(prod_resources, "aws-syd-bigip-provider")
    assert rules.bigip_provider_hygiene(provider) == []
    assert rules.bigip_provider_hygiene(_with(provider, validateCertsDisable="true")) == [
        "validateCertsDisable must be false (verify the BIG-IP's certificate)"
    ]
    assert rules.bigip_provider_hygiene(_with(provider, teemDisable="false")) == [
        "teemDisable must be true (no telemetry to F5)"
    ]


def test_fails_plaintext_secret_inputs(prod_resources: list[rules.Resource]) -> None:
    login = _one(prod_resources, "aws-syd-cis-login")
    assert rules.no_plaintext_secrets(login) == []
    leaked = _with(login, stringData={"username": engine.SECRET, "password": "hunter2"})
    assert rules.no_plaintext_secrets(leaked) == [
        "stringData.password is in plaintext; pass it as a Pulumi secret"
    ]
    provider = _one(prod_resources, "aws-syd-bigip-provider")
    assert rules.no_plaintext_secrets(_with(provider, password="hunter2"))
    pair = _one(prod_resources, "onprem-syd-egress-identity")
    assert rules.no_plaintext_secrets(pair) == []
    assert rules.no_plaintext_secrets(_with(pair, keyContent="-----BEGIN EC PRIVATE KEY-----")) == [
        "keyContent is in plaintext; pass it as a Pulumi secret"
    ]
    k8s = _one(prod_resources, "aws-syd-cluster-k8s")
    assert rules.no_plaintext_secrets(_with(k8s, kubeconfig="apiVersion: v1"))


def test_fails_a_cluster_with_istiod_but_no_strict_mesh_mtls(prod_resources: list[rules.Resource]) -> None:
    without = [r for r in prod_resources if r.name != "azure-mel-mesh-strict-mtls"]
    [(urn, message)] = rules.strict_mtls_in_every_unit(without)
    assert urn == _one(prod_resources, "azure-mel-mesh-istiod").urn
    assert "no mesh-wide STRICT PeerAuthentication" in message
    permissive = [
        _with(r, spec={"mtls": {"mode": "PERMISSIVE"}}) if r.name == "aws-syd-mesh-strict-mtls" else r
        for r in prod_resources
    ]
    assert len(rules.strict_mtls_in_every_unit(permissive)) == 1


def test_fails_an_egress_virtual_server_without_client_certificates_or_the_irule(
    prod_resources: list[rules.Resource],
) -> None:
    vs = _one(prod_resources, "onprem-syd-egress-virtual-server")
    others = [r for r in prod_resources if r.name != vs.name]
    assert rules.egress_requires_mtls_and_authz([*others, _with(vs, irules=[])]) == [
        (vs.urn, "egress virtual server must carry the egress-spiffe-authz iRule")
    ]
    profile = _one(prod_resources, "onprem-syd-egress-client-ssl")
    relaxed = [_with(r, peerCertMode="request") if r.name == profile.name else r for r in prod_resources]
    assert rules.egress_requires_mtls_and_authz(relaxed) == [
        (vs.urn, "egress virtual server must use a client-ssl profile with peerCertMode require")
    ]


def test_the_pack_reports_through_the_policy_sdk_validate_functions(
    prod_resources: list[rules.Resource],
) -> None:
    policies = {p.name: p for p in pack.policies()}
    assert set(policies) == set(rules.RESOURCE_RULES) | set(rules.STACK_RULES)
    provider = _one(prod_resources, "aws-syd-bigip-provider")
    reported: list[tuple[str, Any]] = []
    args = SimpleNamespace(
        resource_type=provider.type,
        name=provider.name,
        urn=provider.urn,
        props={**provider.props, "teemDisable": "false"},
        provider=None,
    )
    policies["bigip-provider-tls-and-no-telemetry"].validate(args, lambda m, u: reported.append((m, u)))
    assert reported == [("teemDisable must be true (no telemetry to F5)", None)]
    stack_args = SimpleNamespace(
        resources=[
            SimpleNamespace(
                resource_type=r.type,
                name=r.name,
                urn=r.urn,
                props=r.props,
                provider=SimpleNamespace(urn=r.provider) if r.provider else None,
            )
            for r in prod_resources
            if r.name != "aws-syd-mesh-strict-mtls"
        ]
    )
    reported.clear()
    policies["strict-mesh-mtls-in-every-unit"].validate(stack_args, lambda m, u: reported.append((m, u)))
    assert [u for _, u in reported] == [_one(prod_resources, "aws-syd-mesh-istiod").urn]


def test_fails_the_render_with_exit_1_when_a_rule_is_broken(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from components import nginx
    from tools import render

    original = nginx.values

    def latest(n: Any) -> dict[str, Any]:
        v = original(n)
        v["controller"]["image"]["tag"] = "latest"
        return v

    monkeypatch.setattr(nginx, "values", latest)
    assert render.main(["--stack", "dev", "--out", str(tmp_path), "--no-validate", "--policy"]) == 1
    printed = capsys.readouterr().out
    assert "policy: pinned-charts-and-images: " in printed
    assert "chart values: controller.image.tag is 'latest'; pin an exact tag" in printed
