"""Runbooks as web pages: one section of `rules/runbooks.md` rendered to a self-contained HTML page.

Pure functions, no I/O: the receiver reads the markdown and serves `/runbooks/ALERTNAME`, so the
`runbook_url` of every alert opens without a wiki. Only the markdown the runbooks use is
understood (headings, paragraphs, lists, fenced code, `code`, **bold**, *emphasis*, links);
everything is HTML-escaped first, and a link is kept only when it is http(s), relative or an anchor.
"""

from __future__ import annotations

import html
import re

_SECTION = re.compile(r"^## +(\S+)\s*$", re.MULTILINE)
_LIST_ITEM = re.compile(r"^\s*(?:[-*]|\d+[.)])\s+")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_SAFE_URL = re.compile(r"^(?:https?://|/|#|\./|[A-Za-z0-9_.-]+(?:[/#]|$))")

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}"
    "code,pre{font-family:ui-monospace,monospace;background:#f2f2f2;border-radius:3px}"
    "code{padding:0 .2em}pre{padding:.6em;overflow-x:auto}h1{font-size:1.5rem}"
    "nav{font-size:.9rem;margin-bottom:1rem}"
)


def runbook_sections(markdown: str) -> dict[str, str]:
    """Alert name -> the markdown of its `## AlertName` section (up to the next heading of level 1 or 2)."""
    sections: dict[str, str] = {}
    matches = list(_SECTION.finditer(markdown))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(markdown)
        body = markdown[match.end():end]
        chapter = re.search(r"^# ", body, re.MULTILINE)  # a level-1 heading closes the section too
        sections[match.group(1)] = body[: chapter.start()] if chapter else body
    return sections


def _inline(text: str) -> str:
    """Escape `text` and render code spans, links, bold and emphasis (never inside code spans)."""
    out = []
    for i, part in enumerate(text.split("`")):
        if i % 2:  # inside a code span
            out.append(f"<code>{html.escape(part)}</code>")
            continue
        part = html.escape(part, quote=False)
        part = _LINK.sub(_link, part)
        part = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", part)
        part = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", part)
        out.append(part)
    return "".join(out)


def _link(match: re.Match[str]) -> str:
    label, url = match.group(1), html.unescape(match.group(2))
    if not _SAFE_URL.match(url):
        return label
    return f'<a href="{html.escape(url)}">{label}</a>'


def markdown_to_html(markdown: str) -> str:
    """The HTML fragment of a block of runbook markdown."""
    blocks: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []
    lines = markdown.splitlines()

    def flush() -> None:
        if paragraph:
            blocks.append("<p>" + _inline(" ".join(s.strip() for s in paragraph)) + "</p>")
            paragraph.clear()
        if items:
            blocks.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in items) + "</ul>")
            items.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            flush()
            code = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                code.append(lines[i])
                i += 1
            blocks.append("<pre><code>" + html.escape("\n".join(code)) + "</code></pre>")
        elif heading := re.match(r"^(#{1,6}) +(.*)$", line):
            flush()
            level = min(len(heading.group(1)) + 1, 6)  # the page title is the only <h1>
            blocks.append(f"<h{level}>{_inline(heading.group(2).strip())}</h{level}>")
        elif not line.strip():
            flush()
        elif _LIST_ITEM.match(line):
            if paragraph:
                flush()
            items.append(_LIST_ITEM.sub("", line, count=1).strip())
        elif items and line.startswith((" ", "\t")):
            items[-1] += " " + line.strip()  # a wrapped list item
        else:
            if items:
                flush()
            paragraph.append(line)
        i += 1
    flush()
    return "\n".join(blocks)


def _page(title: str, body: str, index_href: str | None) -> str:
    nav = f'<nav><a href="{html.escape(index_href)}">All runbooks</a></nav>' if index_href else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body>{nav}<main>\n{body}\n</main></body></html>\n"
    )


def render_runbook(markdown: str, alert: str, index_href: str = "/runbooks/") -> str | None:
    """The page of `alert`'s runbook, or None when `runbooks.md` has no section for it."""
    section = runbook_sections(markdown).get(alert)
    if section is None:
        return None
    body = f"<h1>{html.escape(alert)}</h1>\n" + markdown_to_html(section)
    return _page(f"{alert} · TTS Sentinel runbook", body, index_href)


def render_index(markdown: str, base_path: str = "/runbooks") -> str:
    """A page listing every runbook, each linking to `base_path/AlertName`."""
    names = sorted(runbook_sections(markdown))
    base = base_path.rstrip("/")
    items = "".join(f'<li><a href="{html.escape(f"{base}/{n}")}">{html.escape(n)}</a></li>' for n in names)
    return _page("TTS Sentinel runbooks", f"<h1>TTS Sentinel runbooks</h1>\n<ul>{items}</ul>", None)
