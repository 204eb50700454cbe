"""CPU cost of online template mining: the log pipeline with learning on against the same pipeline off.

Writes a log of `--seconds` of traffic at `--warn-per-s` WARN/ERROR lines a second (1,000 by
default: known patterns, a few unknown templates with varying numbers and ids, a new one now
and then) among `--info-per-s` INFO lines, and a log of the INFO lines only. Each is read by
the pipeline in one poll, with and without `exporter.logs.learning`, best of `--repeat`; prints
CPU seconds, the share of one core that mining costs at that rate, and the ratios.

    python bench/logs_mining.py [--seconds 60] [--warn-per-s 1000] [--info-per-s 4000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import CollectorRegistry  # noqa: E402

from tts_sentinel.exporter.logs.pipeline import LogPipeline  # noqa: E402
from tts_sentinel.loghistory.config import LogFileConfig, LogsConfig  # noqa: E402
from tts_sentinel.loghistory.mining.config import LearningConfig  # noqa: E402

INFO = [
    "POST /tts 200 text_len={n} lang=zh speaker=Vivian rtf=0.{m:02d} duration={k}ms",
    "synthesized {n} chars in 0.{m}s, peak_mem=7{k}MB, lang=zh+en",
    "GET /health 200 0.{m}ms",
]
WARN_ERROR = [  # (level, message): the first three are known patterns, the rest are not
    ("ERROR", "[CUDA] Out of memory on device {d}"),
    ("WARNING", "Stream buffer underflow: expected 2048 samples, got {m}"),
    ("ERROR", "Text preprocessing failed: invalid unicode sequence at pos {m}"),
    ("WARNING", "[WARN] Tokenizer skipped {d} special chars"),
    ("WARNING", "slow request req={h} took {k}ms, queue_depth={m}"),
    ("ERROR", "Synthesis engine failed: worker-{d} lost connection to 10.0.0.{d}:8000 after {m}s"),
    ("WARNING", "cache miss for speaker Vivian at /var/cache/tts/{h}/voice.bin"),
    ("ERROR", "request {h} rejected: text too long ({k} > 4096 chars)"),
]


def write_log(path: Path, seconds: int, warn_per_s: int, info_per_s: int, seed: int = 1) -> tuple[int, int]:
    """Write the log; returns (lines, WARN/ERROR lines)."""
    rng = random.Random(seed)
    start = datetime(2024, 6, 15, 14, 0, 0)
    lines = warn = 0
    with open(path, "w", encoding="utf-8") as f:
        for s in range(seconds):
            buf = []
            kinds = ["I"] * info_per_s + ["W"] * warn_per_s
            rng.shuffle(kinds)
            for i, kind in enumerate(kinds):
                t = start + timedelta(seconds=s, microseconds=i * 1_000_000 // len(kinds))
                v = {"n": rng.randrange(5000), "m": rng.randrange(100), "k": rng.randrange(1000),
                     "d": rng.randrange(8), "h": f"{rng.getrandbits(32):08x}"}
                if kind == "I":
                    level, msg = "INFO", rng.choice(INFO)
                else:
                    level, msg = rng.choice(WARN_ERROR)
                    if rng.random() < 0.001:  # a template never seen before, now and then
                        msg = f"unexpected {rng.choice(['codec', 'vocoder', 'sampler'])} state {{m}} in stage {{d}}"
                    warn += 1
                buf.append(f"{t:%Y-%m-%d %H:%M:%S},{t.microsecond // 1000:03d} [{level}] {msg.format(**v)}\n")
            f.write("".join(buf))
            lines += len(buf)
    return lines, warn


# learning off; on (promoted templates are then matched, not mined); on with promotion out of
# reach (every unknown line goes through Drain3: the worst case)
VARIANTS = {
    "off": LearningConfig(enabled=False),
    "on": LearningConfig(min_age_seconds=0),
    "on, no promotion": LearningConfig(min_age_seconds=0, promote_lines_per_minute=1e9),
}


def cpu_of_one_poll(log: Path, work: Path, learning: LearningConfig, scanner: str = "auto",
                    ) -> tuple[float, CollectorRegistry]:
    config = LogsConfig(files=[LogFileConfig(name="inference", path=log)], start_at="beginning", learning=learning,
                        scanner=scanner)
    state = work / "state"
    shutil.rmtree(state, ignore_errors=True)
    registry = CollectorRegistry()
    pipeline = LogPipeline(config, registry, state)
    t0 = time.process_time()
    pipeline.poll_once()
    elapsed = time.process_time() - t0
    pipeline.stop()
    return elapsed, registry


def best(log: Path, work: Path, learning: LearningConfig, repeat: int, scanner: str = "auto",
         ) -> tuple[float, CollectorRegistry]:
    runs = [cpu_of_one_poll(log, work, learning, scanner) for _ in range(repeat)]
    return min(runs, key=lambda r: r[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--warn-per-s", type=int, default=1000)
    ap.add_argument("--info-per-s", type=int, default=4000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-mining-"))
    work.mkdir(parents=True, exist_ok=True)
    mixed, quiet = work / "mixed.log", work / "info-only.log"
    lines, warn = write_log(mixed, args.seconds, args.warn_per_s, args.info_per_s)
    quiet_lines, _ = write_log(quiet, args.seconds, 0, args.info_per_s)
    print(f"{mixed.name}: {lines:,} lines ({mixed.stat().st_size / 1e6:.1f} MB) in {args.seconds} s of log, "
          f"{warn:,} WARN/ERROR ({warn / args.seconds:,.0f}/s); {quiet.name}: {quiet_lines:,} INFO lines")

    results = {name: best(mixed, work, learning, args.repeat) for name, learning in VARIANTS.items()}
    off, reg_off = results["off"]
    for name, (_, reg) in results.items():
        for metric, labels in (("tts_log_lines_total", {"log": "inference"}),
                               ("tts_log_pattern_matches_total", {"log": "inference", "pattern": "cuda_oom"})):
            a, b = reg_off.get_sample_value(metric, labels), reg.get_sample_value(metric, labels)
            assert a == b, f"{metric}{labels}: {a} with learning off, {b} with learning {name}"
    quiet_runs = {engine: (best(quiet, work, VARIANTS["off"], args.repeat, engine)[0],
                           best(quiet, work, VARIANTS["on"], args.repeat, engine)[0])
                  for engine in ("auto", "literal")}

    print(f"\n{'mixed log, learning':<26} {'CPU s':>7} {'vs off':>7} {'µs/WARN line':>13} {'core at rate':>13} "
          f"{'mined':>8} {'promoted':>9}")
    for name, (cpu, reg) in results.items():
        per_line_us = (cpu - off) / warn * 1e6
        mined = reg.get_sample_value("tts_log_mined_lines_total", {"log": "inference"}) or 0
        promoted = reg.get_sample_value("tts_log_templates_active", {}) or 0
        print(f"{name:<26} {cpu:>7.3f} {cpu / off:>6.2f}x {per_line_us:>13.1f} "
              f"{per_line_us * args.warn_per_s / 1e6:>13.1%} {mined:>8,.0f} {promoted:>9,.0f}")
    for engine, (q_off, q_on) in quiet_runs.items():
        label = f"INFO-only, {engine} engine"
        print(f"{label:<26} {q_off:>7.3f} {q_on / q_off:>6.2f}x   (no WARN/ERROR in any block: {q_on:.3f} s with "
              "learning on, the level prefilter only)")
    print(f"\n'core at rate': CPU share of one core that learning adds at {args.warn_per_s:,} WARN/ERROR lines/s.")
    if args.dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
