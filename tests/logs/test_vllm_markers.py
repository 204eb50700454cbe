"""vLLM / vLLM-Omni / PyTorch / NCCL failure markers: each built-in pattern catches the real lines of its
failure, and nothing else.

The corpus lines have the shapes these processes print (process prefix, level, date, `[file:line]`),
taken from public bug reports of vLLM, vLLM-Omni and PyTorch, with pids and dates varied. The
distractors are lines a healthy engine prints that mention the same words: help texts, config
dumps, INFO lines about memory. Lines are matched the way the exporter matches them: by the block
scanner, over the whole corpus at once.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tts_sentinel.loghistory.config import BUILTIN_PATTERNS
from tts_sentinel.loghistory.scanner import compile_pattern, count_matching_lines

RULES = Path(__file__).parents[2] / "rules" / "vllm.rules.yml"

CORPUS: dict[str, list[str]] = {
    "engine_core_fatal": [
        "ERROR 04-28 02:37:03 [core.py:398] EngineCore encountered a fatal error.",
        "(EngineCore_DP0 pid=2025) ERROR 08-13 11:31:02 [core.py:710] EngineCore encountered a fatal error.",
    ],
    "engine_core_died": [
        "ERROR 01-16 17:16:49 [core_client.py:605] Engine core proc EngineCore_DP0 died unexpectedly, "
        "shutting down client.",
        "(APIServer pid=1) ERROR 01-29 08:37:48 [core_client.py:564] Engine core proc EngineCore_DP1 died "
        "unexpectedly, shutting down client.",
        "ERROR 10-23 18:21:12 [core_client.py:597] Engine core proc EngineCore_0 died unexpectedly, shutting down "
        "client.",
    ],
    "stage_replica_shutdown": [
        "INFO 05-11 13:41:30 [stage_pool.py:392] [StagePool] Stage 0 replica 0 shut down",
        "(APIServer pid=7) INFO 07-29 11:18:04 [stage_pool.py:401] [StagePool] Stage 1 replica 2 shut down",
    ],
    "shm_broadcast_stall": [
        "(EngineCore_DP0 pid=77352) INFO 10-22 09:43:49 [shm_broadcast.py:466] No available shared memory "
        "broadcast block found in 60 seconds. This typically happens when some processes are hanging or doing "
        "some time-consuming work (e.g. compilation).",
        "(APIServer pid=81599) INFO 04-18 01:08:52 [shm_broadcast.py:681] No available shared memory broadcast "
        "block found in 60 seconds. This typically happens when some processes are hanging or doing some "
        "time-consuming work (e.g. compilation, weight/kv cache quantization).",
        "(VllmWorkerProcess pid=3106) WARNING 10-12 22:31:22 shm_broadcast.py:396] No available block found in "
        "60 second. ",
    ],
    "execute_model_timeout": [
        "(EngineCore_DP0 pid=311) ERROR 06-05 09:19:47 [core.py:586] TimeoutError: RPC call to execute_model "
        "timed out.",
    ],
    "engine_iteration_timeout": [
        "ERROR 10-30 03:11:02 async_llm_engine.py:656] Engine iteration timed out. This should never happen!",
    ],
    "tts_no_audio_output": [
        "(APIServer pid=1) ERROR 03-04 08:12:40 [serving_speech.py:655] TTS model did not produce audio output.",
        "{'error': {'message': 'TTS model did not produce audio output.', 'type': 'BadRequestError', "
        "'param': None, 'code': 400}}",
    ],
    "cuda_illegal_memory_access": [
        "[rank0]:[E ProcessGroupNCCL.cpp:1414] [PG 2 Rank 0] Process group watchdog thread terminated with "
        "exception: CUDA error: an illegal memory access was encountered",
        "(EngineCore_DP0 pid=5) ERROR 07-23 06:51:50 [core.py:710] torch.AcceleratorError: CUDA error: an "
        "illegal memory access was encountered",
    ],
    "cuda_error_oom": [
        "(Worker pid=12) ERROR 02-01 12:00:01 [multiproc_executor.py:671] RuntimeError: CUDA error: out of memory",
    ],
    "nccl_watchdog_timeout": [
        "[rank3]:[E1012 22:31:22.267261276 ProcessGroupNCCL.cpp:607] [Rank 3] Watchdog caught collective "
        "operation timeout: WorkNCCL(SeqNum=203441, OpType=GATHER, NumelIn=32064, NumelOut=0, "
        "Timeout(ms)=600000) ran for 600020 milliseconds before timing out.",
    ],
}

# What a healthy engine prints that mentions the same words: no built-in pattern may count these.
DISTRACTORS = [
    "INFO 03-23 11:50:35 model_runner.py:1333] CUDA graphs can take additional 1~3 GiB memory per GPU. If you "
    "are running out of memory, consider decreasing `gpu_memory_utilization` or enforcing eager mode. You can "
    "also reduce the `max_num_seqs` as needed to decrease memory usage.",
    "(EngineCore_DP0 pid=7) INFO 03-04 08:10:31 [gpu_worker.py:298] Available KV cache memory: 30.12 GiB",
    "(APIServer pid=1) INFO 03-04 08:10:02 [utils.py:253] non-default args: {'model': "
    "'Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice', 'trust_remote_code': True, 'enforce_eager': True, "
    "'gpu_memory_utilization': 0.4, 'served_model_name': ['qwen3tts']}",
    "  --gpu-memory-utilization GPU_MEMORY_UTILIZATION  The fraction of GPU memory to be used for the model "
    "executor, which can range from 0 to 1. Lower it when the engine runs out of memory.",
    "  VLLM_ENGINE_ITERATION_TIMEOUT_S  Seconds an engine iteration may take before the engine is declared hung.",
    "  VLLM_RINGBUFFER_WARNING_INTERVAL  Seconds between warnings when no shared memory broadcast block is free.",
    "INFO 05-11 13:39:02 [stage_pool.py:210] [StagePool] Stage 0 replica 0 started",
    "(EngineCore_DP0 pid=7) INFO 03-04 08:10:05 [core.py:93] Initializing a V1 LLM engine (v0.11.0) with config: "
    "model='Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice', enforce_eager=True, kv_cache_dtype=auto",
    '(APIServer pid=1) INFO:     127.0.0.1:56038 - "POST /v1/audio/speech HTTP/1.1" 200 OK',
    "NCCL INFO NCCL version 2.21.5+cuda12.4",
    "[rank0]:[W1209 11:24:53.753104426 ProcessGroupNCCL.cpp:4115] Warning: TORCH_NCCL_ASYNC_ERROR_HANDLING is "
    "deprecated, use TORCH_NCCL_ASYNC_ERROR_HANDLING_FUNCTION",
]

# Lines that belong to a neighbouring failure and must not count as this one.
NOT_THIS = {
    # EngineDeadError is what the API server says after the core died: `engine_dead` counts it, not the core's own marker.
    "engine_core_fatal": ["vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. See stack "
                          "trace (above) for the root cause."],
    "cuda_error_oom": ["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."],
}

MARKERS = sorted(CORPUS)
PATTERNS = {p.name: p for p in BUILTIN_PATTERNS}


def counted(pattern_name: str, lines: list[str]) -> int:
    """Lines of `lines` the exporter's block scanner counts for the pattern."""
    block = ("\n".join(lines) + "\n").encode()
    return count_matching_lines(block, compile_pattern(pattern_name, PATTERNS[pattern_name].regex))


def test_every_marker_is_a_built_in_pattern():
    assert set(MARKERS) <= set(PATTERNS)


@pytest.mark.parametrize("marker", MARKERS)
def test_each_marker_counts_exactly_its_own_lines(marker):
    everything = [line for lines in CORPUS.values() for line in lines] + DISTRACTORS
    assert counted(marker, CORPUS[marker]) == len(CORPUS[marker])
    assert counted(marker, everything) == len(CORPUS[marker])
    assert counted(marker, NOT_THIS.get(marker, [])) == 0


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_no_built_in_pattern_counts_a_healthy_engine_line(name):
    assert counted(name, DISTRACTORS) == 0, [line for line in DISTRACTORS if re.search(PATTERNS[name].regex, line)]


def vllm_alerts() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
            if "alert" in rule]


@pytest.mark.parametrize("marker", MARKERS)
def test_each_marker_has_an_alert_that_names_its_fault_family(marker):
    alerts = [a for a in vllm_alerts() if re.search(rf"\b{marker}\b", a["expr"])]
    assert alerts, f"no alert in {RULES.name} counts {marker}"
    for alert in alerts:
        assert alert["labels"]["family"] in {"inference_engine", "cuda_context", "audio_output"}, alert
