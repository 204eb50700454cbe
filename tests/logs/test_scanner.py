"""The block scanner gives exactly the answers of a plain per-line loop, only faster."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from tts_sentinel.loghistory.config import BUILTIN_PATTERNS
from tts_sentinel.loghistory.scanner import (
    LineAssembler,
    compile_pattern,
    count_matching_lines,
    cut_long_lines,
    invalid_utf8_lines,
    required_literal,
)

SAMPLES = {
    "cuda_oom": "[CUDA] Out of memory on device 0",
    "invalid_unicode": "Text preprocessing failed: invalid unicode sequence at pos 17",
    "stream_underflow": "Stream buffer underflow: expected 2048 samples, got 0",
    "model_load_timeout": "Model load timeout > 15s",
    "audio_silent": "Health check failed: audio output silent for 8s",
    "segfault": "Fatal Python error: Segmentation fault",
    "torch_cuda_oom": "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    "torch_oom_error": "torch.OutOfMemoryError: CUDA out of memory.",
    "engine_dead": "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue.",
    "orchestrator_crashed": "ERROR Orchestrator thread crashed: boom",
    "unsupported_speakers": "ValueError: Unsupported speakers: ['bob']",
    "unsupported_languages": "ValueError: Unsupported languages: ['xx']",
    # vLLM / vLLM-Omni markers (their corpus and distractors: tests/logs/test_vllm_markers.py)
    "engine_core_fatal": "ERROR 04-28 02:37:03 [core.py:398] EngineCore encountered a fatal error.",
    "engine_core_died": "ERROR [core_client.py:564] Engine core proc EngineCore_DP0 died unexpectedly, shutting down client.",
    "stage_replica_shutdown": "INFO 05-11 13:41:30 [stage_pool.py:392] [StagePool] Stage 0 replica 0 shut down",
    "shm_broadcast_stall": "No available shared memory broadcast block found in 60 seconds.",
    "execute_model_timeout": "TimeoutError: RPC call to execute_model timed out.",
    "engine_iteration_timeout": "ERROR Engine iteration timed out. This should never happen!",
    "tts_no_audio_output": "TTS model did not produce audio output.",
    "cuda_illegal_memory_access": "RuntimeError: CUDA error: an illegal memory access was encountered",
    "cuda_error_oom": "RuntimeError: CUDA error: out of memory",
    "nccl_watchdog_timeout": "[Rank 3] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=203441)",
}


def test_every_builtin_pattern_has_a_literal_inside_its_matches():
    assert set(SAMPLES) == {p.name for p in BUILTIN_PATTERNS}
    for p in BUILTIN_PATTERNS:
        lit = required_literal(p.regex)
        match = re.search(p.regex, SAMPLES[p.name])
        assert lit and match, p.name
        assert lit.decode() in match.group(0), p.name
    assert required_literal(r"\[CUDA\] Out of memory on device \d+") == b"[CUDA] Out of memory on device "
    assert required_literal(r"(?i)segmentation fault") is None
    assert required_literal(r"foo|barbaz") is None
    assert required_literal(r"ab") is None


FRAGMENTS = [
    b"[CUDA] Out of memory on device 0", b"[CUDA] Out of memory on device x", b"Model load timeout > 15s",
    b"Segmentation fault", b"plain text", b"\xff\xfe", "你好".encode(), b"\x00", b"\r", b"timeout > s",
    b"Stream buffer underflow: expected 2048 samples, got 0",
]

lines_strategy = st.lists(
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=8)), max_size=4).map(
        lambda parts: b" ".join(parts).replace(b"\n", b" ")
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(lines=lines_strategy)
def test_block_counts_equal_per_line_counts(lines):
    block = b"".join(line + b"\n" for line in lines)
    patterns = [*BUILTIN_PATTERNS]
    for p in patterns:
        cp = compile_pattern(p.name, p.regex)
        expected = sum(1 for line in lines if re.search(p.regex.encode(), line))
        assert count_matching_lines(block, cp) == expected, p.name
    invalid = 0
    for line in lines:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            invalid += 1
    assert invalid_utf8_lines(block) == invalid


def test_pattern_without_literal_is_still_counted_correctly():
    cp = compile_pattern("any_fault", r"(?i)segmentation FAULT|core dumped")
    assert cp.literal is None
    block = b"a Segmentation fault\nb core dumped\nc fine\n"
    assert count_matching_lines(block, cp) == 2


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 300), max_size=20),
    limit=st.integers(64, 200),
    cuts=st.lists(st.integers(1, 400), max_size=30),
)
def test_assembler_cuts_long_lines_the_same_way_whatever_the_chunking(lengths, limit, cuts):
    lines = [bytes([97 + i % 26]) * n for i, n in enumerate(lengths)]
    data = b"".join(line + b"\n" for line in lines)
    expected = b"".join(line[:limit] + b"\n" for line in lines)
    expected_cut = sum(1 for line in lines if len(line) > limit)
    asm = LineAssembler(limit)
    out, cut, pos = [], 0, 0
    for size in cuts + [len(data)]:
        block, n = asm.push(data[pos : pos + size])
        out.append(block)
        cut += n
        pos += size
        assert len(asm.pending) <= limit
    assert b"".join(out) == expected
    assert cut == expected_cut


def test_cut_long_lines_leaves_short_lines_alone():
    block = b"short\n" * 1000
    assert cut_long_lines(block, 64) == (block, 0)
    long_block = b"a" * 1000 + b"\nok\n" + b"b" * 65 + b"\n"
    assert cut_long_lines(long_block, 64) == (b"a" * 64 + b"\nok\n" + b"b" * 64 + b"\n", 2)
