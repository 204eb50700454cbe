"""Template mining finds the frequent line shapes no configured pattern covers."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout

from tts_sentinel.cli import main
from tts_sentinel.loghistory.config import BUILTIN_PATTERNS
from tts_sentinel.loghistory.mining import mask, mine
from tts_sentinel.loghistory.scanner import compile_pattern

TS = r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})(?:[,.](\d{1,6}))?\s*"


def sample_lines() -> list[str]:
    lines = []
    for i in range(300):
        t = f"2024-06-15 14:{i // 60:02d}:{i % 60:02d},{i % 1000:03d}"
        lines.append(f"{t} [INFO] synthesized {i % 37 + 3} chars in 0.{i % 9}s, lang=zh")
        if i % 3 == 0:
            lines.append(f"{t} [WARNING] [WARN] Tokenizer skipped {i % 5 + 1} special chars")
        if i % 50 == 0:
            lines.append(f"{t} [ERROR] [CUDA] Out of memory on device {i % 2}")
    return lines


def test_masking_hides_what_varies():
    assert mask("took 0.35s on 10.0.0.7:8000 for /opt/models/qwen.bin id 3f2a9c1e") == \
        "took <*> on <*> for <*> id <*>"


def test_new_warning_is_found_with_its_count_and_known_patterns_are_left_out():
    patterns = [compile_pattern(p.name, p.regex) for p in BUILTIN_PATTERNS]
    templates, seen, covered = mine(sample_lines(), patterns, timestamp_regex=TS)
    assert seen == 300 + 100 + 6
    assert covered == 6  # the OOM lines match cuda_oom
    by_text = {t.text: t for t in templates}
    tokenizer = by_text["[WARN] Tokenizer skipped <*> special chars"]
    assert tokenizer.count == 100 and tokenizer.level() == "WARNING"
    assert by_text["synthesized <*> chars in <*>, lang=zh"].count == 300
    assert not any("Out of memory" in t for t in by_text)
    # The suggested regex matches the lines of its template.
    rx = re.compile(tokenizer.regex())
    assert all(rx.search(line) for line in sample_lines() if "Tokenizer" in line)


def test_cli_json(tmp_path):
    log = tmp_path / "inference.log"
    log.write_text("\n".join(sample_lines()) + "\n")
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["mine", "--file", str(log), "--json"]) == 0
    doc = json.loads(out.getvalue())
    assert doc["templates"][0]["count"] == 300
    names = {t["suggested_name"] for t in doc["templates"]}
    assert "tokenizer_skipped_special_chars" in names
    with redirect_stdout(io.StringIO()):
        assert main(["mine", "--file", str(tmp_path / "missing.log")]) == 2
