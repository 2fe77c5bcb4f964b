"""The documentation's code runs, its links resolve and its API page is complete.

The Sphinx build itself (``make docs``) runs in its own environment; these checks need
only the package.
"""

import doctest
import importlib
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
CHANGELOG = DOCS.parent / "CHANGELOG.md"
PAGES = sorted(DOCS.glob("*.md"))
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")

PUBLIC_MODULES = [
    "sklearn_robust",
    "sklearn_robust.estimators",
    "sklearn_robust.objectives",
    "sklearn_robust.attacks",
    "sklearn_robust.threat",
    "sklearn_robust.bridge",
    "sklearn_robust.metrics",
    "sklearn_robust.separation",
    "sklearn_robust.verify",
    "sklearn_robust.callbacks",
    "sklearn_robust.datasets",
    "sklearn_robust.persistence",
    "sklearn_robust.plotting",
]


def python_blocks(page):
    """``(line, body)`` of each ```python block of a Markdown page, in order."""
    text = page.read_text()
    return [
        (text.count("\n", 0, m.start(2)), m.group(2))
        for m in FENCE.finditer(text) if m.group(1) == "python"
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_python_blocks_run(page):
    """Blocks with ``>>>`` run as doctests, in order, sharing the page's names; the
    others, shown for reading only, must at least compile."""
    globs = {"__name__": f"docs_{page.stem}"}
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    report = []
    for line, body in python_blocks(page):
        if ">>>" not in body:
            compile(body, f"{page.name}, python block at line {line + 1}", "exec")
            continue
        test = parser.get_doctest(body, globs, page.name, str(page), line)
        runner.run(test, out=report.append, clear_globs=False)
        globs = test.globs  # the DocTest works on a copy
    assert runner.failures == 0, "".join(report)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    """Links to other files (pages, images) point at files that exist, so the pages read
    on GitHub as well as in Sphinx (which also checks the #anchors)."""
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        assert (page.parent / path).exists(), f"{page.name}: broken link {target}"


def test_api_page_lists_every_public_name():
    """Every name of every public module's ``__all__`` is on the API page (re-exports of
    the top level count once, under their home module)."""
    api = (DOCS / "api.rst").read_text()
    documented = set(re.findall(r"^\s{3}(\w+)\s*$", api, re.M))
    modules = set(re.findall(r"^\.\. currentmodule:: ([\w.]+)", api, re.M))
    missing = []
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        assert name in modules, f"{name} has no section on the API page"
        public = getattr(module, "__all__", None) or [
            n for n, o in vars(module).items()
            if not n.startswith("_") and callable(o) and getattr(o, "__module__", "") == name
        ]
        missing += [f"{name}.{n}" for n in public
                    if not n.startswith("__") and n not in documented]
    assert not missing, f"not on docs/api.rst: {missing}"


def test_changelog_keeps_a_changelog():
    """CHANGELOG.md in Keep a Changelog form: ``## [Unreleased]`` first, then the releases,
    under each only the standard subsections, one line per change (the measurements and
    reasons are in docs/history.md), and a link for every release heading."""
    text = CHANGELOG.read_text()
    releases = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert releases and releases[0] == "Unreleased", releases
    subsections = set(re.findall(r"^### (.+)$", text, re.M))
    standard = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    assert subsections and subsections <= standard, subsections - standard
    continued = re.findall(r"^[ \t]+\S.*$", text, re.M)
    assert not continued, f"one line per change: {continued[:3]}"
    links = {name.lower() for name in re.findall(r"^\[([^\]]+)\]: \S+$", text, re.M)}
    assert {name.lower() for name in releases} <= links
    assert "docs/history.md" in text and (DOCS / "history.md").exists()
    assert "history" in (DOCS / "index.md").read_text().split("{toctree}")[1]
