"""README.md and docs/*.md: every relative markdown link resolves to a file of the repository,
and every anchor to a heading of the file it names (GitHub's slugs); the README stays short."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_BYTES = 15_000

FENCE = re.compile(r"^(`{3,}|~{3,}).*?^\1[ \t]*$", flags=re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target) or [text](target "title"); an image's ![alt](source) is checked too
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^\s()<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", flags=re.M)
EXTERNAL = ("http://", "https://", "mailto:")


def prose(markdown: str) -> str:
    """The text outside code: fenced blocks and inline code hold no links or headings."""
    return INLINE_CODE.sub("", FENCE.sub("", markdown))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lowercase, spaces to '-', punctuation
    other than '-' and '_' dropped."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor in a markdown file (repeated headings get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """The page's relative links that name no file of `root`, or an anchor its file does not have."""
    broken: list[str] = []
    for target in LINK.findall(prose(page.read_text())):
        if target.startswith(EXTERNAL):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / unquote(path)).resolve() if path else page
        if not file.exists() or root not in (file, *file.parents):
            broken.append(f"{target}: no file {path} in the repository")
        elif anchor and (file.suffix != ".md" or anchor not in anchors(file)):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(root)}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = broken_links(page)
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_docs_pages_exist_and_say_what_they_cover() -> None:
    names = {page.stem for page in PAGES[1:]}
    concerns = {"benchmarks", "security", "privacy", "operations", "web-chat", "console"}
    concerns |= {"console-api", "importing", "models", "cli", "testing"}
    assert concerns <= names, f"missing docs pages: {sorted(concerns - names)}"
    for page in PAGES[1:]:
        title, blank, first = page.read_text().split("\n")[:3]
        assert re.fullmatch(r"# \S.*", title) and not blank and first.strip(), page.name


def test_readme_is_short() -> None:
    size = (ROOT / "README.md").stat().st_size
    assert size < README_MAX_BYTES, f"README.md is {size} bytes; move detail into docs/"


def test_slug_is_githubs() -> None:
    assert slug("Console API and the conversation index") == "console-api-and-the-conversation-index"
    assert slug("Importing a shop's own data") == "importing-a-shops-own-data"
    assert slug("FAISS at 1,000,000 items") == "faiss-at-1000000-items"
    assert slug("Offers (`smartmkt/offers/policy.py`)") == "offers-smartmktofferspolicypy"
    assert slug("Sessions and CSRF") == "sessions-and-csrf"
    assert slug("snake_case - here") == "snake_case---here"


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "other.md").write_text("# Other\n\n## A heading\n")
    (tmp_path / "outside.md").write_text("# Outside\n")
    page = root / "page.md"
    page.write_text(
        "[ok](other.md) [ok](other.md#a-heading) [ok](#top) [web](https://example.com)\n"
        "[gone](missing.md) [bad anchor](other.md#nothing) [outside](../outside.md)\n\n"
        "```text\n[in code](also-missing.md)\n```\n\n`[inline](code.md)`\n\n# Top\n"
    )
    assert broken_links(page, root=root) == [
        "missing.md: no file missing.md in the repository",
        "other.md#nothing: no heading #nothing in other.md",
        "../outside.md: no file ../outside.md in the repository",
    ]
