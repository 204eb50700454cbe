"""L3 semantic prober: does each styled prompt still carry its intonation?

For every style: synthesise the prompt, extract the F0 contour (pyworld), compare
its z-scored log-F0 with the baseline template by DTW (mean |dz| along the path)
and check the F0 spread in semitones. 0.35 is a distance in z units, not Hz or
semitones. Measured here (bench machine, dio, window 0.2): the simulator's voice,
another speaker of the same prompt 0.04-0.09, another sentence 0.34-0.38, the other
style 0.41-0.44, monotone 0.80; espeak-ng (English), another voice of the same text
0.04-0.29, another sentence 0.15-0.56. A monotone espeak reading still z-scores to a
similar shape (0.16-0.21) but its spread drops to 0.35-0.42 semitones against
1.5-3.1 for the normal reading: the spread check is what catches it. A JSON line
per run goes to the semantic report log.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from tts_sentinel.exporter.audio.pitch import (
    MIN_VOICED_FRAMES,
    dtw_distance,
    f0_contour,
    f0_spread_semitones,
    zscore_log_f0,
)
from tts_sentinel.exporter.baseline import BaselineStore
from tts_sentinel.exporter.evidence import keep_evidence
from tts_sentinel.exporter.evidence_exhibit import Exhibit, measured, request_check
from tts_sentinel.exporter.probes.config import ProbesConfig, SemanticProbeConfig
from tts_sentinel.exporter.probes.prober import Measurement, Prober, ProbeResult
from tts_sentinel.exporter.probes.speech import SpeechError, request_speech

REASONS = ("timeout", "connection", "http_status", "bad_wav", "no_baseline", "unvoiced", "dtw_distance", "f0_spread")
log = logging.getLogger(__name__)


def probe_semantic(config: SemanticProbeConfig, probes: ProbesConfig) -> ProbeResult:
    """Check every configured style against its template; append the run to the report log."""
    store = BaselineStore(probes.baseline_dir, probes.model_id)
    result = ProbeResult(success=True, detail="")
    entries: dict[str, dict[str, Any]] = {}
    for style, prompt in config.styles.items():
        heard: dict[str, Any] = {}
        entry = _check_style(config, store, style, prompt.text, prompt.instructions, result, heard)
        entries[style] = entry
        if entry["reason"]:
            result.success = False
            result.reasons.append(entry["reason"])
            keep_evidence(probes, _exhibit(config, store, style, prompt.text, entry, heard))
    result.detail = "; ".join(f"{s}: {e['detail']}" for s, e in entries.items())
    _append_report(config.report_path, {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "model_id": probes.model_id,
        "ok": result.success, "threshold": config.max_dtw_distance,
        "min_f0_spread_semitones": config.min_f0_spread_semitones, "styles": entries,
    })
    return result


def _check_style(config: SemanticProbeConfig, store: BaselineStore, style: str, text: str, instructions: str,
                 result: ProbeResult, heard: dict[str, Any]) -> dict[str, Any]:
    """One style's report entry; `heard` gets the clip and its F0 for the evidence of a failure."""
    entry: dict[str, Any] = {"text": text, "reason": None}
    labels = {"style": style}
    try:
        audio = request_speech(config.request, text, config.lang, config.speaker, instructions)
    except SpeechError as exc:
        return {**entry, "reason": exc.reason, "detail": str(exc)}
    f0 = f0_contour(audio.samples, audio.sample_rate, config.f0_method, config.frame_period_ms)
    heard.update(clip=audio, f0=f0)
    spread = f0_spread_semitones(f0)
    entry.update(seconds=round(audio.duration_seconds, 3), voiced_frames=int(len(f0)),
                 f0_spread_semitones=round(spread, 3))
    result.gauges.append(Measurement("tts_semantic_f0_spread_semitones",
                                     "Standard deviation of the F0 of the style prompt, in semitones.", labels, spread))
    if len(f0) < MIN_VOICED_FRAMES:
        return {**entry, "reason": "unvoiced", "detail": f"only {len(f0)} voiced frames"}
    template = store.style_f0(style)
    if template is None or len(template) < MIN_VOICED_FRAMES:
        return {**entry, "reason": "no_baseline",
                "detail": f"no template for {style!r} in {store.dir}; run `tts-sentinel baseline`"}
    distance = dtw_distance(zscore_log_f0(template), zscore_log_f0(f0), config.dtw_window_ratio)
    entry["dtw_distance"] = round(distance, 4)
    result.gauges.append(Measurement("tts_semantic_dtw_distance",
                                     "DTW distance (z units) of the F0 contour to its baseline template.",
                                     labels, distance))
    detail = f"dtw {distance:.3f} (max {config.max_dtw_distance}), spread {spread:.2f} st"
    if distance > config.max_dtw_distance:
        return {**entry, "reason": "dtw_distance", "detail": detail}
    if spread < config.min_f0_spread_semitones:
        return {**entry, "reason": "f0_spread", "detail": detail + f" (min {config.min_f0_spread_semitones})"}
    return {**entry, "detail": detail}


def _exhibit(config: SemanticProbeConfig, store: BaselineStore, style: str, text: str, entry: dict[str, Any],
             heard: dict[str, Any]) -> Exhibit:
    """The evidence of a failed style: its clip and F0 beside the baseline recording and template."""
    cell = {"lang": config.lang, "speaker": config.speaker, "style": style}
    if "clip" not in heard:
        return Exhibit("semantic", cell, [entry["reason"]], entry["detail"],
                       request_check(entry["reason"], entry["detail"]), text)
    checks = [measured("voiced_frames", entry["voiced_frames"], ">=", MIN_VOICED_FRAMES)]
    if "dtw_distance" in entry:
        checks.append(measured("dtw_distance", entry["dtw_distance"], "<=", config.max_dtw_distance, "z"))
    checks.append(measured("f0_spread", entry["f0_spread_semitones"], ">=", config.min_f0_spread_semitones, "st"))
    return Exhibit("semantic", cell, [entry["reason"]], entry["detail"], checks, text, clip=heard["clip"],
                   baseline=store.style_audio(style), f0=heard["f0"], template_f0=store.style_f0(style))


def _append_report(path: Path, record: dict[str, Any]) -> None:
    """One JSON line per run; a report that cannot be written must not fail the probe."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    except OSError as exc:
        log.warning("cannot append to the semantic report %s: %s", path, exc)


PROBER = Prober(run=probe_semantic, reasons=REASONS)
