"""Real probes against the simulator's faults keep the evidence that proves them, and nothing when healthy."""

from __future__ import annotations

import json
import re

import pytest

from tests.evidence.exhibits import store_at
from tts_sentinel.exporter.evidence import attach_evidence, detach_evidence
from tts_sentinel.exporter.probes.quality import probe_quality
from tts_sentinel.exporter.probes.semantic import probe_semantic
from tts_sentinel.exporter.probes.synthesis import probe_synthesis


@pytest.fixture
def store(probes, tmp_path):
    store = store_at(tmp_path / "evidence")
    attach_evidence(probes, store)
    yield store
    detach_evidence(probes)


def failed(item) -> dict:
    return {c["name"]: c for c in item["failed_checks"]}


def test_a_healthy_service_leaves_no_evidence(sim, probes, store):
    for probe, config in ((probe_synthesis, probes.synthesis), (probe_semantic, probes.semantic),
                          (probe_quality, probes.quality)):
        assert probe(config, probes).success
    assert store.items() == []


def test_runaway_audio_keeps_the_clip_and_the_duration_bound(sim, probes, store):
    sim.inference.set_fault("runaway")
    assert probe_synthesis(probes.synthesis, probes).reasons == ["too_long", "too_long"]
    items = store.items()
    assert [i["cell"]["speaker"] for i in items] == ["Vivian", "Ryan"]
    check = failed(items[0])["duration (too_long)"]
    assert check["op"] == "<=" and check["value"] > check["threshold"] and check["unit"] == "s"
    assert items[0]["clip"]["seconds"] == pytest.approx(check["value"], abs=0.001)
    assert items[0]["baseline"] is None, "the L2 matrix has no recorded baseline"


def test_a_monotone_voice_keeps_the_f0_contour_over_the_template(sim, probes, store):
    sim.inference.set_fault("monotone")
    result = probe_semantic(probes.semantic, probes)
    assert not result.success
    items = store.items()
    assert {i["cell"]["style"] for i in items} == {"happy", "serious"}
    item = items[0]
    assert set(failed(item)) & {"dtw_distance", "f0_spread"}
    assert {f["name"] for f in item["files"]} == {"clip.wav", "baseline.wav", "waveform.svg", "f0.svg",
                                                  "evidence.json"}
    svg = store.read_file(item["id"], "f0.svg")[0].decode()
    assert len(re.findall("<polyline", svg)) == 2 and "template" in svg, "the clip's contour and the template's"


def test_noise_keeps_the_quality_scores_with_the_reference(sim, probes, store):
    sim.inference.set_fault("noise")
    result = probe_quality(probes.quality, probes)
    assert not result.success
    [item] = store.items()
    assert item["cell"] == {"lang": "zh", "speaker": "Vivian", "sample": "seed"}
    assert set(failed(item)) == set(result.reasons)
    assert all(c["op"] == ">=" and c["value"] < c["threshold"] for c in item["failed_checks"])
    assert store.read_file(item["id"], "baseline.wav")[0][:4] == b"RIFF"


def test_no_audio_keeps_the_error_without_a_clip(sim, probes, store):
    sim.inference.set_fault("error500")
    probe_synthesis(probes.synthesis, probes)
    item = store.items()[0]
    assert item["reasons"] == ["http_status"] and item["clip"] is None
    [check] = item["failed_checks"]
    assert check["name"] == "request (http_status)" and "500" in check["note"]
    assert [f["name"] for f in item["files"]] == ["evidence.json"]


def test_an_unwritable_evidence_dir_never_changes_a_probe_result(sim, probes, tmp_path):
    sim.inference.set_fault("silent")
    plain = probe_synthesis(probes.synthesis, probes)
    (tmp_path / "blocked").write_text("a file, not a dir")
    store = store_at(tmp_path / "blocked" / "evidence")
    attach_evidence(probes, store)
    try:
        hooked = probe_synthesis(probes.synthesis, probes)
    finally:
        detach_evidence(probes)
    assert (hooked.success, hooked.reasons, hooked.detail) == (plain.success, plain.reasons, plain.detail)
    assert store.items() == [] and json.dumps(hooked.reasons) == '["silent", "silent"]'
