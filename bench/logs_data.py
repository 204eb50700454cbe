"""Synthetic Qwen3-TTS logs in the seed's line format, for the log benchmarks.

Mostly INFO request lines of varying length, with the seed's error patterns sprinkled
in at realistic (low) rates and a torch traceback now and then.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

MESSAGES = [
    "POST /tts 200 text_len={n} lang=zh speaker=Vivian rtf=0.{n2:02d} duration={n3}ms",
    "synthesized {n} chars in 0.{n2}s, peak_mem=7{n3}MB, lang=zh+en",
    "GET /health 200 0.{n2}ms",
    "language detected: zh (p=0.9{n2}), text_len={n}",
    "stream chunk {n} sent, {n3} samples, buffer={n2}%",
    "[WARN] Tokenizer skipped {n2} special chars",
    "request {n} queued, queue_depth={n2}",
]
ERRORS = [
    "[CUDA] Out of memory on device 0",
    "Text preprocessing failed: invalid unicode sequence at pos {n2}",
    "Stream buffer underflow: expected 2048 samples, got {n2}",
    "Model load timeout > 15s",
    "Health check failed: audio output silent for 8s",
    # what the real services print, rarer
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue",
    "ValueError: Unsupported speakers: ['bob']",
]
LEVELS = ["INFO", "INFO", "INFO", "DEBUG", "WARNING"]


def write_log(path: Path, lines: int, start: datetime, step_ms: float, seed: int = 1,
              error_every: int = 997) -> datetime:
    """Write `lines` lines to `path` starting at `start`; returns the time of the last line."""
    rng = random.Random(seed)
    t = start
    step = timedelta(milliseconds=step_ms)
    buf: list[str] = []
    with open(path, "w", encoding="utf-8") as f:
        for i in range(lines):
            if i % error_every == error_every - 1:
                msg, level = rng.choice(ERRORS), "ERROR"
            else:
                msg, level = MESSAGES[i % len(MESSAGES)], LEVELS[i % len(LEVELS)]
            msg = msg.format(n=i % 5000, n2=i % 97, n3=i % 1000)
            buf.append(f"{t:%Y-%m-%d %H:%M:%S},{t.microsecond // 1000:03d} [{level}] "
                       f"[worker-{i % 4}] req={i * 2654435761 % 4294967296:08x} {msg}\n")
            t += step
            if len(buf) >= 100_000:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))
    return t - step
