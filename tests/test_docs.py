"""The definitions in docs/ are what code, notebooks and README cite: every citation resolves.

Code and notebooks cite a section as ``docs/<file>.md#<heading-anchor>`` (anchors as GitHub
makes them: lower case, punctuation dropped, spaces to hyphens); markdown files link to it
relative to themselves. These tests find every such reference in the repository and check
that the file and the heading exist, that the docs pages link to each other correctly, and
that no citation of the old, out-of-repository definitions file is left.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import REPO

DOCS = REPO / "docs"

#: Directories never scanned: outputs, environments, caches, generated data.
_SKIP_DIRS = {".git", ".venv", "data", "runs", "figures", "models", "__pycache__",
              ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints", "node_modules", "build",
              "dist"}
_TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".yaml", ".yml", ".toml", ".cfg", ".txt", ".sh"}

#: ``docs/<file>.md`` with an optional ``#anchor``, as code and notebooks cite sections.
_DOCS_REF = re.compile(r"docs/([A-Za-z0-9_./-]+?\.md)(?:#([A-Za-z0-9_-]*))?")
#: markdown links ``[text](target)`` (images too); the target has no spaces.
_MD_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
#: the old citation style: the word naming the definitions file that is not in the repo
_OLD_CITATION = re.compile(r"\b" + "SP" + r"EC\b")


def _skipped(path: Path) -> bool:
    parts = path.relative_to(REPO).parts[:-1]
    return any(p in _SKIP_DIRS or p.endswith(".egg-info") or p.startswith(".weaver")
               or (p.startswith(".") and p != ".ci") for p in parts)


def _text_files() -> list[Path]:
    """Source, notebook, params and documentation files of the repository."""
    files = []
    for path in sorted(REPO.rglob("*")):
        if not path.is_file() or _skipped(path):
            continue
        in_ci = path.parent.name == ".ci"
        if path.suffix in _TEXT_SUFFIXES or in_ci:
            files.append(path)
    return files


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: links reduced to their text, lower case, every
    character that is not a letter, digit, underscore, hyphen or space dropped, spaces
    turned into hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: Path) -> set[str]:
    """Anchors of every heading of a markdown file (fenced code skipped; repeated headings
    get GitHub's -1, -2, ... suffixes)."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    fence = None
    for line in markdown.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        marker = re.match(r"(```|~~~)", stripped)
        if marker:
            if fence is None:
                fence = marker.group(1)
            elif stripped.startswith(fence):
                fence = None
            continue
        if fence is not None:
            continue
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = github_anchor(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def _location(path: Path, text: str, pos: int) -> str:
    return f"{path.relative_to(REPO)}:{text.count(chr(10), 0, pos) + 1}"


def _problem(target: Path, anchor: str | None) -> str | None:
    """Why a reference to ``target`` (and ``anchor``) does not resolve, or None."""
    if not target.is_file():
        return f"no file {target.relative_to(REPO) if target.is_relative_to(REPO) else target}"
    if anchor and target.suffix == ".md" and anchor not in anchors(target):
        return f"no heading with anchor #{anchor} in {target.relative_to(REPO)}"
    return None


def test_anchor_rule_matches_github():
    assert github_anchor("Weaver 0.5 and the fold") == "weaver-05-and-the-fold"
    assert github_anchor("AUC Wang et al flavour") == "auc-wang-et-al-flavour"
    assert github_anchor("Pitfall 5: the self-pair mass is rounding noise") == (
        "pitfall-5-the-self-pair-mass-is-rounding-noise")
    assert github_anchor("The capture bug of the papers scripts") == (
        "the-capture-bug-of-the-papers-scripts")
    assert github_anchor("Zero-U and A := 0") == "zero-u-and-a--0"


def test_docs_exist_with_an_index():
    pages = sorted(p.name for p in DOCS.glob("*.md"))
    assert "README.md" in pages and "design.md" in pages, pages
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    linked = {m.group(1).split("#")[0] for m in _MD_LINK.finditer(index)}
    missing = [p for p in pages if p != "README.md" and p not in linked]
    assert not missing, f"docs/README.md does not link to {missing}"


def test_every_docs_citation_resolves():
    """Every ``docs/<file>.md#<anchor>`` anywhere in the repository names a real section."""
    problems, n_refs = [], 0
    for path in _text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in _DOCS_REF.finditer(text):
            n_refs += 1
            problem = _problem(DOCS / match.group(1), match.group(2))
            if problem:
                problems.append(f"{_location(path, text, match.start())}: {match.group(0)}: {problem}")
    assert n_refs > 0, "no docs/ citation found at all: the scan is broken"
    assert not problems, "unresolved docs citations:\n" + "\n".join(problems)


def _markdown_sources() -> list[tuple[Path, str]]:
    """(file, markdown text) of docs/*.md, README.md and the notebooks' markdown cells."""
    out = [(p, p.read_text(encoding="utf-8")) for p in sorted(DOCS.glob("*.md"))]
    out.append((REPO / "README.md", (REPO / "README.md").read_text(encoding="utf-8")))
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        out.append((nb, text))
    return out


@pytest.mark.parametrize("path, text", _markdown_sources(),
                         ids=lambda v: str(v.relative_to(REPO)) if isinstance(v, Path) else "")
def test_markdown_links_resolve(path, text):
    """Relative links in docs, README and notebook markdown point at existing files and
    headings (links to web pages are not checked)."""
    problems = []
    for match in _MD_LINK.finditer(text):
        target = match.group(1)
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:, ...
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not file_part and path.suffix != ".md":
            continue  # an in-notebook anchor
        problem = _problem(resolved, anchor or None)
        if problem:
            problems.append(f"{_location(path, text, match.start())}: ({target}): {problem}")
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_no_old_citations_left():
    """Citations point into docs/, not at the definitions file that is not in the repository."""
    me = Path(__file__).resolve()
    found = []
    for path in _text_files():
        if path.resolve() == me:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [_location(path, text, m.start()) for m in _OLD_CITATION.finditer(text)]
    assert not found, "old-style citations (replace by docs/<file>.md#<anchor>):\n" + "\n".join(found)


def test_readme_links_the_docs():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    targets = {m.group(1).split("#")[0] for m in _MD_LINK.finditer(readme)}
    assert "docs/analyses.md" in targets, "README's analysis table should link docs/analyses.md"
    assert "docs/" in readme.split("## Layout", 1)[-1], "README's Layout should mention docs/"
