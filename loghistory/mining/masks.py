"""What varies inside one template of log lines, masked before Drain3 sees it.

Numbers, hex ids, paths, durations (and UUIDs, addresses, quoted strings) become named
placeholders such as `<NUM>`, so that `skipped 3 special chars` and `skipped 5 special chars`
are one line shape before clustering starts. Drain3 itself marks the tokens that still vary
between lines of one cluster as `<*>`. A template turns back into a regular expression with
each placeholder replaced by what it stood for, so a learned template matches the raw lines.
"""

from __future__ import annotations

import re

from drain3.masking import LogMasker, MaskingInstruction

WILDCARD = "<*>"

# (name, what finds it in a line, what matches it in a learned pattern), most specific first:
# a UUID is not five numbers, a duration is not a bare number. The second regex is simpler
# than the first, so a learned pattern stays readable when a person pastes it into the config.
MASKS: list[tuple[str, str, str]] = [
    ("UUID", r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", r"[0-9a-fA-F-]{36}"),
    ("IP", r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", r"[\d.]+(?::\d+)?"),
    ("PATH", r"(?<![\w.])(?:/[\w.\-@+]+){2,}/?", r"/[\w.\-@+/]+"),
    ("STR", r"'[^'\n]*'|\"[^\"\n]*\"", r"(?:'[^']*'|\"[^\"]*\")"),
    ("HEX", r"\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,}\b",
     r"(?:0x)?[0-9a-fA-F]+"),
    ("DUR", r"(?<![\w.])\d+(?:\.\d+)?(?:ns|us|µs|ms|s|sec|secs|m|min|mins|h|d)\b", r"\d[\d.]*[a-zµ]+"),
    ("NUM", r"(?<![\w.])\d+(?:[.,]\d+)*(?:[A-Za-z%]{1,3})?\b", r"\d[\d.,]*[A-Za-z%]{0,3}"),
]

_MASKER = LogMasker([MaskingInstruction(find, name) for name, find, _ in MASKS], "<", ">")
_REGEX_OF = {f"<{name}>": match for name, _, match in MASKS} | {WILDCARD: r"\S+"}
_PLACEHOLDER = re.compile("(" + "|".join(re.escape(p) for p in _REGEX_OF) + ")")


def mask(text: str) -> str:
    """The text with its variable parts replaced by named placeholders (`<NUM>`, `<HEX>`, ...)."""
    return _MASKER.mask(text)


def is_variable(token: str) -> bool:
    """True when the token holds a placeholder (masked, or marked <*> by Drain3)."""
    return _PLACEHOLDER.search(token) is not None


def token_regex(token: str) -> str:
    """One template token as a regular expression: literal text escaped, placeholders as what they hid."""
    return "".join(_REGEX_OF.get(part) or re.escape(part) for part in _PLACEHOLDER.split(token) if part)


def template_regex(tokens: list[str] | tuple[str, ...]) -> str:
    """A regular expression that finds the template's lines (searched anywhere in the raw line).

    Variable context at either end (`[worker-<NUM>] req=<HEX> ...`) is dropped: it only makes
    the expression brittle, and the constant words in between say what the line is.
    """
    toks = list(tokens)
    while len(toks) > 1 and is_variable(toks[0]):
        toks.pop(0)
    while len(toks) > 1 and is_variable(toks[-1]):
        toks.pop()
    return r"\s+".join(token_regex(t) for t in toks)
