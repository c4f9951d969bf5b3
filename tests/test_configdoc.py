"""docs/config.md is generated from the config models and never stale; every field and rule says
what it is, so the generated reference has something to say (tools/configdoc.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from components import config, versions
from components.config import rules
from tools import configdoc


def _section(title: str) -> str:
    """The text of the section headed `title` in docs/config.md as generated."""
    text = configdoc.render()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _flat(text: str | None) -> str:
    return " ".join((text or "").split())


def test_docs_config_md_is_what_the_models_generate() -> None:
    current = configdoc.OUT.read_text(encoding="utf-8") if configdoc.OUT.exists() else ""
    assert current == configdoc.render(), "docs/config.md is stale; run make docs"


def test_fails_the_check_when_docs_config_md_differs_from_the_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "config.md"
    monkeypatch.setattr(configdoc, "OUT", out)
    monkeypatch.setattr(configdoc, "ROOT", tmp_path)
    assert configdoc.main(["--check"]) == 1  # missing
    assert configdoc.main([]) == 0
    assert configdoc.main(["--check"]) == 0
    out.write_text(out.read_text().replace("`istioVersion`", "`istio`"))
    assert configdoc.main(["--check"]) == 1


@pytest.mark.parametrize("model", config.every_model(), ids=lambda m: m.__name__)
def test_every_field_has_a_description_and_every_model_a_docstring(model: type[config.Model]) -> None:
    assert model.__doc__ and model.__doc__ != config.Model.__doc__
    assert [name for name, info in model.model_fields.items() if not info.description] == []


def test_every_rule_has_a_summary() -> None:
    checks = {
        rule for m in config.every_model() for rule in (*getattr(m, "checked_before", ()), *m.checked_by)
    }
    checks |= set(rules.STACK_RULES)
    assert sorted(r.__name__ for r in checks if not (r.__doc__ or "").strip()) == []


def test_every_model_and_every_key_it_accepts_is_in_the_reference() -> None:
    text = configdoc.render()
    for section in configdoc._sections():
        body = _section(section.title)
        keys = [info.alias or name for name, info in section.model.model_fields.items()]
        assert re.findall(r"^- `([A-Za-z]+)`:", body, flags=re.M) == keys, section.title
    anchors = [s.anchor for s in configdoc._sections()]
    assert len(set(anchors)) == len(anchors)  # each link names one section
    documented = {s.model for s in configdoc._sections()}
    assert {m for m in config.every_model() if m is not config.BigipAccess} == documented
    assert "## Cross-field rules" in text


def test_a_field_shows_its_type_default_and_what_it_allows() -> None:
    mesh = _section("`units[].mesh`")
    assert f"- `istioVersion`: text, default `{versions.ISTIO_VERSION}`. The pinned Istio version." in mesh
    assert "- `trustDomain`: text, required." in mesh
    apps = _flat(_section("`units[].apps[]`"))
    assert "- `port`: integer, required. The virtual server's port. Allowed: 1-65535." in apps
    assert "`kind`: text, required." in apps and "one of `http-mesh`, `http-nginx`, `tcp`, `udp`" in apps
    assert "Allowed: 3-63 lowercase letters" in apps  # the app name's validator docstring
    unit = _flat(_section("`units[]`"))
    assert "`cluster`: mapping by `source`: [k3d](#unitscluster-source-k3d), [kubeconfig](#" in unit
    assert "at most 20 characters" in unit


def test_a_models_rules_and_the_stack_rules_are_listed_by_their_summaries() -> None:
    assert rules.istio_serves_v1_apis.__doc__
    assert _flat(rules.istio_serves_v1_apis.__doc__) in _flat(_section("`units[].mesh`"))
    stack_rules = _flat(_section("Cross-field rules"))
    for rule in rules.STACK_RULES:
        assert _flat(rule.__doc__) in stack_rules, rule.__name__


def test_the_reference_keeps_to_the_page_width_outside_tables_and_code() -> None:
    text = re.sub(r"^```.*?^```", "", configdoc.render(), flags=re.S | re.M)
    long = [line for line in text.splitlines() if len(line) > configdoc.WIDTH and not line.startswith("|")]
    assert long == []
