"""Hyperscan and the literal scanner count the same lines, on generated logs with invalid UTF-8 and long lines."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tts_sentinel.loghistory import hyperscan_engine
from tts_sentinel.loghistory.config import BUILTIN_PATTERNS
from tts_sentinel.loghistory.scanner import BlockScanner, LineAssembler, compile_pattern

# Built-in patterns plus ones where the engines' dialects differ: Hyperscan only prefilters,
# the Python regex has the last word.
TRICKY = {
    "lookbehind": r"(?<=device )\d+",
    "end_anchor": r"timeout > \d+s$",
    "spans_lines_in_hyperscan": r"memory\s+on",
    "backref": r"(\w{3}) \1",  # Hyperscan can only approximate this one as a prefilter
    "may_be_empty": r"x*$",  # matches the empty string: empty lines are never counted, by either engine
    "huge_repeat": r"fault x{2,70000}",  # refused by Hyperscan ("bounded repeat is too large"): literal scanner
    "caseless": r"(?i)segmentation FAULT",
    "start_anchor": r"^Model load",
}
PATTERNS = [compile_pattern(p.name, p.regex) for p in BUILTIN_PATTERNS] + [
    compile_pattern(name, rx) for name, rx in TRICKY.items()]

FRAGMENTS = [
    b"[CUDA] Out of memory on device 0", b"Out of memory", b"on device 7", b"Model load timeout > 15s",
    b"Segmentation fault", b"SEGMENTATION fault", b"abc abc", b"\xff\xfe", "\u4f60\u597d".encode(), b"\x00", b"\r",
    b"torch.OutOfMemoryError: CUDA out of memory.", b"EngineCore encountered an issue.", b"memory", b"on",
]

lines_strategy = st.lists(
    st.one_of(
        st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=8)), max_size=5).map(
            lambda parts: b" ".join(parts).replace(b"\n", b" ")),
        st.integers(min_value=200, max_value=3000).map(lambda n: b"x" * n + b" Segmentation fault"),
    ),
    max_size=40,
)

needs_hyperscan = pytest.mark.skipif(
    not hyperscan_engine.AVAILABLE, reason="the hyperscan wheel is not installed (make test installs it)")


@needs_hyperscan
@settings(max_examples=150, deadline=None)
@given(lines=lines_strategy, max_line=st.sampled_from([64, 1024, 1 << 20]))
def test_both_engines_count_the_same_lines(lines, max_line):
    assembler = LineAssembler(max_line)
    block, _ = assembler.push(b"".join(line + b"\n" for line in lines))
    literal = BlockScanner(PATTERNS, engine="literal").scan(block)
    fast = BlockScanner(PATTERNS, engine="hyperscan").scan(block)
    assert fast == literal
    # and both agree with a plain per-line loop over the same (cut) lines
    for i, p in enumerate(PATTERNS):
        expected = sum(1 for line in block.split(b"\n") if line and p.regex.search(line))
        assert literal.matches[i] == expected, p.name


@needs_hyperscan
def test_hyperscan_takes_what_it_can_and_leaves_the_rest_to_the_literal_scanner():
    scanner = BlockScanner(PATTERNS, engine="hyperscan")
    assert scanner.engine == "hyperscan"
    assert scanner._hs is not None and scanner._hs.prefiltered == len(PATTERNS) - 1
    block = b"abc abc\nabc abd\n\n[CUDA] Out of memory on device 3\nSegmentation fault xxx\n"
    counts = dict(zip([p.name for p in PATTERNS], scanner.scan(block).matches, strict=True))
    assert counts["backref"] == 1 and counts["cuda_oom"] == 1 and counts["lookbehind"] == 1
    assert counts["may_be_empty"] == 4 and counts["huge_repeat"] == 1


def test_auto_picks_hyperscan_only_when_installed():
    scanner = BlockScanner(PATTERNS)
    assert scanner.engine == ("hyperscan" if hyperscan_engine.AVAILABLE else "literal")
    assert re.search(TRICKY["end_anchor"], "Model load timeout > 15s")
