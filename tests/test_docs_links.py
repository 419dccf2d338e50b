"""The README and docs/ hold together: every relative link and `#anchor` resolves.

Links are read as GitHub renders them: fenced code blocks and inline code hold no links,
and a heading's anchor is GitHub's slug of its text (lower case, punctuation dropped, spaces
to hyphens, `-1`, `-2`, ... for repeats). The README's first code block is the front door's
two commands, and `.ci/run` calls exactly the README's test command.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.repo_paths import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(
    r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+\"[^\"]*\")?\s*\)"
)
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
_HTML_TAG = re.compile(r"<[^>]+>")
_TABLE_ROW = re.compile(r"^\s*\|")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass(frozen=True)
class Line:
    number: int
    text: str


def prose_lines(text: str) -> Iterator[Line]:
    """The lines outside fenced code blocks, numbered from 1."""
    fence = ""
    for number, line in enumerate(text.splitlines(), start=1):
        opening = _FENCE.match(line)
        if fence:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = ""
            continue
        if opening:
            fence = opening.group(1)
            continue
        yield Line(number, line)


def code_blocks(text: str) -> list[list[str]]:
    """The fenced code blocks' contents, in order."""
    blocks: list[list[str]] = []
    body: list[str] = []
    fence = ""
    for line in text.splitlines():
        opening = _FENCE.match(line)
        if fence:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                blocks.append(body)
                fence, body = "", []
            else:
                body.append(line)
        elif opening:
            fence = opening.group(1)
    return blocks


def rendered(heading: str) -> str:
    """A heading's text as GitHub renders it: code spans, links, emphasis and tags unwrapped."""
    text = _INLINE_CODE.sub(lambda match: match.group(2).strip(), heading)
    text = _LINK.sub(lambda match: match.group(1), text)
    text = _HTML_TAG.sub("", text)
    return re.sub(r"(\*+|(?<!\w)_+|_+(?!\w))", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading (github-slugger): keep letters, digits, `_`, `-`, spaces."""
    return re.sub(r"[^\w\- ]", "", rendered(heading).strip().lower()).replace(" ", "-")


def headings(text: str) -> list[str]:
    found: list[str] = []
    previous = ""
    for line in prose_lines(text):
        atx = _ATX.match(line.text)
        if atx:
            found.append(atx.group(2) or "")
        elif _SETEXT.match(line.text) and previous.strip() and not _TABLE_ROW.match(previous):
            found.append(previous.strip())
        previous = line.text
    return found


@cache
def anchors(page: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    result: set[str] = set()
    for heading in headings(page.read_text(encoding="utf-8")):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return frozenset(result)


def links(text: str) -> Iterator[tuple[int, str]]:
    """(line number, target) of every inline and reference link outside code."""
    for line in prose_lines(text):
        prose = _INLINE_CODE.sub("", line.text)
        for match in _LINK.finditer(prose):
            yield line.number, match.group(2)
        reference = _REFERENCE.match(prose)
        if reference:
            yield line.number, reference.group(1)


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def broken(page: Path, target: str) -> str | None:
    """Why a link target of `page` does not resolve, or None when it does."""
    target = target.removeprefix("<").removesuffix(">")
    if _SCHEME.match(target) or target.startswith("//"):
        return None  # an external URL: not ours to check offline
    path_part, _, fragment = target.partition("#")
    destination = (page.parent / unquote(path_part)).resolve() if path_part else page
    if not destination.exists():
        return f"{path_part} does not exist"
    if fragment and destination.suffix == ".md" and unquote(fragment) not in anchors(destination):
        known = ", ".join(sorted(anchors(destination)))
        return f"no heading #{fragment} in {shown(destination)} (has: {known})"
    return None


@pytest.mark.parametrize("page", PAGES, ids=shown)
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    problems = [
        f"{shown(page)}:{number}: {target}: {why}"
        for number, target in links(page.read_text(encoding="utf-8"))
        if (why := broken(page, target)) is not None
    ]
    assert not problems, "\n".join(problems)


def test_readme_links_every_docs_page() -> None:
    text = README.read_text(encoding="utf-8")
    linked = {
        (README.parent / target.partition("#")[0]).resolve()
        for _, target in links(text)
        if not _SCHEME.match(target) and target.partition("#")[0]
    }
    missing = [shown(page) for page in PAGES[1:] if page.resolve() not in linked]
    assert not missing, f"README.md does not link {missing}"


def readme_commands() -> list[str]:
    first = code_blocks(README.read_text(encoding="utf-8"))[0]
    return [command for line in first if (command := line.split("#", 1)[0].strip())]


def test_readme_starts_with_the_two_commands() -> None:
    assert readme_commands() == ["./dev serve", "./dev test"]


def test_ci_runs_the_readme_test_command() -> None:
    test_command = readme_commands()[1]
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    commands = [line.strip() for line in ci_lines if not line.lstrip().startswith("#")]
    assert any(re.match(rf"{re.escape(test_command)}(\s|$)", line) for line in commands)


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("What a call does", "what-a-call-does"),
        ("TypeScript client: `@memori-grpc/client`", "typescript-client-memori-grpcclient"),
        ("`./dev`", "dev"),
        ("Get against a no-op RPC", "get-against-a-no-op-rpc"),
        ("Idempotency (`request_id`)", "idempotency-request_id"),
        ("**Bold** and [a link](x.md)", "bold-and-a-link"),
    ],
)
def test_slug_follows_github(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_repeated_headings_get_numbered_anchors(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Errors\n\n```sh\n# Errors\n```\n\n## Errors\n\nSetext\n---\n")
    assert anchors(page) == {"errors", "errors-1", "setext"}
