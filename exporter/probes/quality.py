"""Quality prober (seed §5.3): envelope fluctuation, STOI and optional PESQ per sample text.

Each check's result is exported as tts_quality_check_passed{sample,check} with the
threshold applied here (the config is the one place for it); the rule in
rules/probes.rules.yml only asks that a check has failed for 24 h without a break.
"""

from __future__ import annotations

import numpy as np

from tts_sentinel.exporter.audio.checks import envelope_fluctuation
from tts_sentinel.exporter.audio.quality import pesq_score, stoi_score
from tts_sentinel.exporter.audio.wav import Audio
from tts_sentinel.exporter.baseline import BaselineStore
from tts_sentinel.exporter.evidence import keep_evidence
from tts_sentinel.exporter.evidence_exhibit import Exhibit, measured, request_check
from tts_sentinel.exporter.probes.config import ProbesConfig, QualityProbeConfig
from tts_sentinel.exporter.probes.prober import Measurement, Prober, ProbeResult
from tts_sentinel.exporter.probes.speech import SpeechError, request_speech

REASONS = ("timeout", "connection", "http_status", "bad_wav", "silent", "no_baseline", "envelope", "stoi", "pesq")
# Below this peak a sample is silence: nothing to score against the reference (STOI and PESQ need a signal).
SILENT_PEAK_DBFS = -50.0


def probe_quality(config: QualityProbeConfig, probes: ProbesConfig) -> ProbeResult:
    """Synthesise every sample text and score it; success when every check passes."""
    store = BaselineStore(probes.baseline_dir, probes.model_id)
    result = ProbeResult(success=True, detail="")
    details = []
    for name, text in config.samples.items():
        failed, detail = _score_sample(config, store, name, text, result, probes)
        details.append(f"{name}: {detail}")
        for reason in failed:
            result.success = False
            result.reasons.append(reason)
    result.detail = "; ".join(details)
    return result


def _score_sample(config: QualityProbeConfig, store: BaselineStore, name: str, text: str,
                  result: ProbeResult, probes: ProbesConfig) -> tuple[list[str], str]:
    cell = {"lang": config.lang, "speaker": config.speaker, "sample": name}
    try:
        audio = request_speech(config.request, text, config.lang, config.speaker)
    except SpeechError as exc:
        keep_evidence(probes, Exhibit("quality", cell, [exc.reason], str(exc), request_check(exc.reason, str(exc)),
                                      text))
        return [exc.reason], str(exc)
    scores = {"envelope": envelope_fluctuation(audio.samples, audio.sample_rate)}
    minimum = {"envelope": config.min_envelope_fluctuation, "stoi": config.min_stoi, "pesq": config.min_pesq}
    failed: list[str] = []
    reference = store.sample_audio(name)
    peak = float(np.max(np.abs(audio.samples))) if len(audio.samples) else 0.0
    if peak < 10 ** (SILENT_PEAK_DBFS / 20):
        return _silent(config, name, text, scores["envelope"], peak, audio, reference, result, probes)
    if reference is None:
        failed.append("no_baseline")
    elif reference.sample_rate != audio.sample_rate:
        failed.append("no_baseline")  # a reference at another rate belongs to another deployment
    else:
        scores["stoi"] = stoi_score(reference.samples, audio.samples, audio.sample_rate)
        if config.pesq:
            value = pesq_score(reference.samples, audio.samples, audio.sample_rate)
            if value is not None:
                scores["pesq"] = value
    failed += [check for check, value in scores.items() if value < minimum[check]]
    detail = ", ".join(f"{k} {v:.3f} (min {minimum[k]})" for k, v in scores.items())
    _gauges(result, name, scores, minimum)
    if "no_baseline" in failed:
        detail += f"; no reference in {store.dir}: run `tts-sentinel baseline`"
    if failed:
        checks = [measured(k, v, ">=", minimum[k]) for k, v in scores.items()]
        keep_evidence(probes, Exhibit("quality", cell, failed, detail, checks, text, clip=audio, baseline=reference))
    return failed, detail


def _gauges(result: ProbeResult, name: str, scores: dict[str, float], minimum: dict[str, float]) -> None:
    metric = {"envelope": ("tts_quality_envelope_fluctuation_ratio",
                           "Coefficient of variation of the 10 ms RMS over active frames."),
              "stoi": ("tts_quality_stoi", "STOI of the sample against its baseline recording (0..1)."),
              "pesq": ("tts_quality_pesq_mos", "Wide-band PESQ (MOS-LQO) against the baseline recording.")}
    for check, value in scores.items():
        result.gauges.append(Measurement(metric[check][0], metric[check][1], {"sample": name}, value))
        result.gauges.append(Measurement("tts_quality_check_passed", "1 when the quality check met its threshold.",
                                         {"sample": name, "check": check}, 1.0 if value >= minimum[check] else 0.0))


def _silent(config: QualityProbeConfig, name: str, text: str, envelope: float, peak: float, audio: Audio,
            reference: Audio | None, result: ProbeResult, probes: ProbesConfig) -> tuple[list[str], str]:
    """A silent sample fails as `silent`, with its peak; STOI and PESQ are not computed (nothing to compare)."""
    level = f"{20 * np.log10(peak):.1f} dBFS" if peak > 0 else "all-zero audio"
    detail = (f"silent: peak {level} (below {SILENT_PEAK_DBFS:g} dBFS) over {audio.duration_seconds:.2f}s; "
              "STOI/PESQ not scored")
    _gauges(result, name, {"envelope": envelope}, {"envelope": config.min_envelope_fluctuation})
    checks = [measured("peak", 20 * np.log10(peak) if peak > 0 else -120.0, ">=", SILENT_PEAK_DBFS, "dBFS"),
              measured("envelope", envelope, ">=", config.min_envelope_fluctuation)]
    keep_evidence(probes, Exhibit("quality", {"lang": config.lang, "speaker": config.speaker, "sample": name},
                                  ["silent"], detail, checks, text, clip=audio, baseline=reference))
    return ["silent"], detail


PROBER = Prober(run=probe_quality, reasons=REASONS)
