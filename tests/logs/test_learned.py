"""The exporter learns: a new WARN/ERROR template is mined online, promoted once, counted,
announced, and a person accepts or rejects it; the weekly `mine` agrees with what was learned."""

from __future__ import annotations

import io
import json
import stat
from contextlib import redirect_stdout

from tts_sentinel.cli import main
from tts_sentinel.loghistory.config import PatternConfig
from tts_sentinel.loghistory.mining.config import LearningConfig
from tts_sentinel.loghistory.mining.learned import load_learned

NEW = "[WARN] Tokenizer skipped <NUM> special chars"
NEW_TEXT = {"text": NEW}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_718_460_000.0

    def __call__(self) -> float:
        return self.now


def stamp(i: int) -> str:
    return f"2024-06-15 14:{i // 60 % 60:02d}:{i % 60:02d},{i % 1000:03d}"


def info(i: int) -> bytes:
    return f"{stamp(i)} [INFO] synthesized {i % 37 + 3} chars in 0.{i % 9}s, lang=zh\n".encode()


def oom(i: int) -> bytes:
    return f"{stamp(i)} [ERROR] [CUDA] Out of memory on device {i % 2}\n".encode()


def tokenizer(i: int) -> bytes:
    return f"{stamp(i)} [WARNING] [WARN] Tokenizer skipped {i % 5 + 1} special chars\n".encode()


def append(path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def learning(**overrides) -> LearningConfig:
    base = dict(promote_lines_per_minute=5, rate_window_seconds=60, min_age_seconds=0, save_interval_seconds=1)
    return LearningConfig(**(base | overrides))


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        rc = main(list(argv))
    return rc, out.getvalue()


def config_file(tmp_path, state_dir) -> str:
    cfg = tmp_path / f"cfg-{state_dir.name}.yml"
    cfg.write_text(f"exporter:\n  state_dir: {state_dir}\n")
    return str(cfg)


def test_new_template_mid_stream_is_promoted_once_counted_announced_and_rejectable(
    make_config, new_pipeline, logdir, value, tmp_path,
):
    state = tmp_path / "state"
    log = logdir / "inference.log"
    pipeline, registry = new_pipeline(make_config(learning=learning()), state)
    clock = pipeline.learner.clock = FakeClock()

    # The stream before: chatter, a known OOM, a warning too rare to promote.
    append(log, b"".join(info(i) for i in range(200)) + oom(200) * 10
           + b"".join(f"{stamp(i)} [WARNING] slow request {i} took 3s\n".encode() for i in range(3)))
    pipeline.poll_once()
    assert load_learned(state / "learned-patterns.json").templates == []
    assert value(registry, "tts_log_mined_lines_total", log="inference") == 3  # the OOM lines are known

    # Mid-stream a new warning appears, five times in a minute: promoted at the fifth.
    for i in range(300, 305):
        clock.now += 10
        assert load_learned(state / "learned-patterns.json").templates == []
        append(log, info(i) + tokenizer(i))
        pipeline.poll_once()
    (entry,) = load_learned(state / "learned-patterns.json").templates
    assert (entry.status, entry.template, entry.logs, entry.level) == ("promoted", NEW, ["inference"], "WARNING")
    assert entry.promoted_at == clock.now and entry.lines_before_promotion == 5
    assert stat.S_IMODE((state / "learned-patterns.json").stat().st_mode) == 0o600
    labels = {"log": "inference", "template": entry.id}
    assert registry.get_sample_value("tts_log_template_matches_total", labels) == 0
    assert registry.get_sample_value("tts_log_template_promoted_timestamp_seconds", labels | NEW_TEXT) == clock.now
    assert value(registry, "tts_log_templates_active") == 1

    # From now on its lines are counted under the template, and it is not promoted again.
    for i in range(305, 325):
        clock.now += 10
        append(log, tokenizer(i))
        pipeline.poll_once()
    assert value(registry, "tts_log_template_matches_total", **labels) == 20
    assert len(load_learned(state / "learned-patterns.json").templates) == 1

    # The weekly mine agrees: the same template, under the same id, learned with all its lines.
    cfg = config_file(tmp_path, state)
    rc, out = cli("mine", "--config", cfg, "--file", str(log), "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["learned"][0]["id"] == entry.id and doc["learned"][0]["count"] == 25
    assert entry.id not in {t["id"] for t in doc["templates"]}  # learned: not reported as new again
    rc, out = cli("mine", "--config", config_file(tmp_path, tmp_path / "nothing-learned"), "--file", str(log), "--json")
    assert json.loads(out)["templates"][0]["id"] == entry.id  # mined offline from scratch: the same id

    # A person rejects it: the exporter reloads the file at its next poll, without a restart.
    rc, out = cli("mine", "--config", cfg, "reject", entry.id)
    assert rc == 0 and "rejected" in out
    pipeline.poll_once()
    assert registry.get_sample_value("tts_log_template_matches_total", labels) is None
    assert registry.get_sample_value("tts_log_template_promoted_timestamp_seconds", labels | NEW_TEXT) is None
    mined_before = value(registry, "tts_log_mined_lines_total", log="inference")
    for i in range(325, 345):
        clock.now += 10
        append(log, tokenizer(i))
        pipeline.poll_once()
    assert value(registry, "tts_log_mined_lines_total", log="inference") == mined_before  # skipped, not mined
    assert [t.status for t in load_learned(state / "learned-patterns.json").templates] == ["rejected"]
    rc, out = cli("mine", "--config", cfg, "--file", str(log), "--json")
    doc = json.loads(out)
    assert doc["rejected_lines"] == 45 and doc["learned"] == []
    assert [t["template"] for t in doc["templates"]] == ["slow request <NUM> took <DUR>"]

    # ... and it never comes back, not after a restart either.
    pipeline.stop()
    pipeline, registry = new_pipeline(make_config(learning=learning()), state)
    pipeline.learner.clock = clock
    for i in range(345, 365):
        clock.now += 10
        append(log, tokenizer(i))
        pipeline.poll_once()
    assert [t.status for t in load_learned(state / "learned-patterns.json").templates] == ["rejected"]
    assert registry.get_sample_value("tts_log_template_promoted_timestamp_seconds", labels | NEW_TEXT) is None


def test_an_accepted_template_is_counted_as_a_named_pattern(make_config, new_pipeline, logdir, value, tmp_path):
    state = tmp_path / "state"
    log = logdir / "inference.log"
    pipeline, registry = new_pipeline(make_config(learning=learning()), state)
    clock = pipeline.learner.clock = FakeClock()
    append(log, b"".join(tokenizer(i) for i in range(5)))
    pipeline.poll_once()
    (entry,) = load_learned(state / "learned-patterns.json").templates
    cfg = config_file(tmp_path, state)
    assert cli("mine", "--config", cfg, "accept", entry.id, "--name", "cuda_oom")[0] == 2  # a configured name
    rc, out = cli("mine", "--config", cfg, "accept", entry.id, "--name", "tokenizer_skipped", "--tier", "light")
    assert rc == 0
    assert "- {name: tokenizer_skipped, regex: '" in out and "logs: [inference]}" in out  # the config snippet
    assert "tier: light" in out and "runbooks/TtsTokenizerSkipped" in out  # the rule snippet
    clock.now += 10
    pipeline.poll_once()
    pattern = {"log": "inference", "pattern": "tokenizer_skipped"}
    assert registry.get_sample_value("tts_log_pattern_matches_total", pattern) == 0
    append(log, b"".join(tokenizer(i) for i in range(5, 12)))
    pipeline.poll_once()
    assert value(registry, "tts_log_pattern_matches_total", **pattern) == 7
    assert registry.get_sample_value("tts_log_template_matches_total", {"log": "inference", "template": entry.id}) \
        is None
    rc, out = cli("mine", "--config", cfg, "list")
    assert rc == 0 and f"{entry.id}  accepted as tokenizer_skipped" in out
    assert cli("mine", "--config", cfg, "reject", "t00000000")[0] == 2  # unknown id: says how to list them


def test_a_known_pattern_is_never_learned(make_config, new_pipeline, logdir, value, tmp_path):
    known = PatternConfig(name="tokenizer_skipped", regex=r"Tokenizer skipped \d+ special chars")
    pipeline, registry = new_pipeline(make_config(learning=learning(), extra_patterns=[known]), tmp_path / "state")
    pipeline.learner.clock = FakeClock()
    append(logdir / "inference.log", b"".join(tokenizer(i) + oom(i) for i in range(50)))
    pipeline.poll_once()
    assert load_learned(tmp_path / "state" / "learned-patterns.json").templates == []
    assert value(registry, "tts_log_mined_lines_total", log="inference") == 0
    assert value(registry, "tts_log_pattern_matches_total", log="inference", pattern="tokenizer_skipped") == 50


def test_active_templates_are_capped(make_config, new_pipeline, logdir, value, tmp_path):
    pipeline, registry = new_pipeline(make_config(learning=learning(max_active_templates=1)), tmp_path / "state")
    pipeline.learner.clock = FakeClock()
    other = b"2024-06-15 14:00:00,000 [ERROR] Synthesis engine failed: worker lost\n"
    append(logdir / "inference.log", b"".join(tokenizer(i) + other for i in range(10)))
    pipeline.poll_once()
    assert [t.template for t in load_learned(tmp_path / "state" / "learned-patterns.json").templates] == [NEW]
    assert value(registry, "tts_log_templates_over_cap_total") == 1  # counted once, not once per line
    assert value(registry, "tts_log_templates_active") == 1


def test_blocks_without_warnings_never_reach_the_miner(make_config, new_pipeline, logdir, tmp_path):
    pipeline, _ = new_pipeline(make_config(learning=learning()), tmp_path / "state")
    append(logdir / "inference.log", b"".join(info(i) for i in range(1000)))
    pipeline.poll_once()
    assert pipeline.learner.miners["inference"].lines == 0
    assert not (tmp_path / "state" / "mining-state.json").exists()


def test_clusters_survive_a_restart_and_a_broken_learned_file_is_left_alone(
    make_config, new_pipeline, logdir, tmp_path, caplog,
):
    state = tmp_path / "state"
    pipeline, _ = new_pipeline(make_config(learning=learning(promote_lines_per_minute=100)), state)
    append(logdir / "inference.log", b"".join(tokenizer(i) for i in range(5)))
    pipeline.poll_once()
    pipeline.stop()
    assert stat.S_IMODE((state / "mining-state.json").stat().st_mode) == 0o600
    (state / "learned-patterns.json").write_text("{broken")
    pipeline, _ = new_pipeline(make_config(learning=learning()), state)
    (t,) = pipeline.learner.miners["inference"].all()
    assert (t.text, t.count) == (NEW, 5)
    append(logdir / "inference.log", b"".join(tokenizer(i) for i in range(5, 10)))
    pipeline.poll_once()  # would promote, but the file cannot be read: it is not overwritten
    assert (state / "learned-patterns.json").read_text() == "{broken"
    assert "not a learned-patterns file" in caplog.text
