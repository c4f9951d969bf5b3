"""README.md is a first screen and docs/ the reference: short lines, links that resolve, every
page reachable, pointers in the code still answered, rollout notes only in CHANGELOG.md
(issue 15 section 2)."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

from tests.support import ROOT

README = ROOT / "README.md"
CHANGELOG = ROOT / "CHANGELOG.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^```.*?^```", flags=re.S | re.M)
LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def _prose(path: Path) -> str:
    return FENCE.sub("", path.read_text())


def _anchors(path: Path) -> set[str]:
    """The ids GitHub gives the file's headings: lower case, punctuation other than '-' and '_'
    dropped, each whitespace character a '-', repeats suffixed -1, -2...
    Ref: Flet/github-slugger@b94b733063c5889f9ceaf4e2bc65bdbd0dbf1a37:index.js (what GitHub does)."""
    seen: Counter[str] = Counter()
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", _prose(path), flags=re.M):
        slug = re.sub(
            r"[\u2000-\u206F\u2E00-\u2E7F\\'!\"#$%&()*+,./:;<=>?@\[\]^`{|}~\u2019]", "", heading.lower()
        )
        slug = re.sub(r"\s", "-", slug.strip())
        found.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return found


def test_the_readme_is_a_first_screen_of_at_most_250_lines_none_over_200_characters() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 250
    long = [f"{n}: {len(line)}" for n, line in enumerate(lines, 1) if len(line) > 200]
    assert long == []


def test_the_readme_says_what_a_newcomer_needs_first() -> None:
    text = README.read_text()
    headings = set(re.findall(r"^## +(.+)$", _prose(README), flags=re.M))
    assert {"Status", "Prerequisites", "Getting started", "Layout", "Documentation"} <= headings
    for command in ("make test", "make render STACK=dev", "make up STACK=dev"):
        assert f"\n{command}\n" in text, command


def test_every_relative_link_names_a_file_and_a_heading_that_exist() -> None:
    broken = []
    for page in (README, CHANGELOG, *DOCS):
        for _, target in LINK.findall(_prose(page)):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            if not path.exists() or (anchor and path.suffix == ".md" and anchor not in _anchors(path)):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []


def test_every_docs_page_is_linked_from_the_readme() -> None:
    assert len(DOCS) >= 10, [p.name for p in DOCS]
    linked = {(ROOT / t.partition("#")[0]).resolve() for _, t in LINK.findall(_prose(README))}
    assert [p.name for p in DOCS if p.resolve() not in linked] == []


def _pointers() -> set[str]:
    """Sections the code, workflows and stack files send a reader to (README and a quoted title),
    and the README's config reference. Comment continuations (`# `) are joined."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    found: set[str] = set()
    for name in listed:
        if name.endswith(".md") or not (ROOT / name).is_file():
            continue
        text = re.sub(r"\n\s*#\s*", " ", (ROOT / name).read_text(errors="replace"))
        found |= {re.sub(r"\s+", " ", s) for s in re.findall(r'README:? "([^"]+)"', text)}
        found |= {"Config reference" for _ in re.findall(r"README's config reference", text)}
    return found


def test_every_readme_section_the_code_points_at_is_still_named_by_the_readme() -> None:
    pointers = _pointers()
    assert {"The refresh model", "Renewal and rotation", "Config reference"} <= pointers
    named = {t.lower() for t, _ in LINK.findall(_prose(README))}
    named |= {h.lower() for h in re.findall(r"^#{1,6} +(.+)$", _prose(README), flags=re.M)}
    assert sorted(p for p in pointers if p.lower() not in named) == []


ROLLOUT = re.compile(r"rolling out|upgrading a deployed stack", flags=re.I)


def test_rollout_notes_live_only_in_the_changelog() -> None:
    elsewhere = [
        f"{p.relative_to(ROOT)}: {m}" for p in (README, *DOCS) for m in ROLLOUT.findall(p.read_text())
    ]
    assert elsewhere == []
    changelog = CHANGELOG.read_text()
    assert changelog.startswith("# Changelog\n\n## Unreleased: rolling out\n")
    # The notes that used to sit in the README: the trusted-certificate move and the BGP restart.
    assert "pulumi config rm cpaas:bigipCert-<unit>" in changelog
    assert "restarts BGP on calico-bgp units" in changelog


PATH_SPAN = re.compile(r"`((?:components|tools|tests|policy|trust|docs|\.github)/[\w./-]*)(?:::(\w+))?`")


def test_every_file_and_test_the_pages_name_exists() -> None:
    """A page that names `tools/x.py` or `tests/test_x.py::test_y` sends the reader to something real."""
    missing = []
    for page in (README, CHANGELOG, *DOCS):
        for path, test in PATH_SPAN.findall(_prose(page)):
            target = ROOT / path
            if not target.exists():
                missing.append(f"{page.relative_to(ROOT)}: {path}")
            elif test and not re.search(rf"^def {test}\(", target.read_text(), flags=re.M):
                missing.append(f"{page.relative_to(ROOT)}: {path}::{test}")
    assert missing == []
