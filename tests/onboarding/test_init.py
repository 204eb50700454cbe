"""`tts-sentinel init` against the stand-in service: detects the protocol, writes a config that validates."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import yaml

from tts_sentinel.cli import main
from tts_sentinel.config import load_config
from tts_sentinel.onboarding.detect import ManagerFacts, detect_log_sources


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def init(tmp_path, url, *extra):
    return cli("init", url, "--out", str(tmp_path / "cfg" / "tts-sentinel.yml"), "--state-dir",
               str(tmp_path / "state"), "--token-file", str(tmp_path / "cfg" / "receiver.token"),
               "--log-dir", str(tmp_path / "logs"), *extra)


def test_vllm_omni_is_recognised_and_the_config_passes_check_config_and_probes(tmp_path, run_simulator):
    sim = run_simulator(protocol="openai")
    rc, out, err = init(tmp_path, sim.api_url)
    assert rc == 0, err
    config_path = tmp_path / "cfg" / "tts-sentinel.yml"
    assert "detected openai" in out
    assert cli("check-config", str(config_path))[0] == 0
    config = load_config(config_path)
    health, synthesis = config.exporter.probes.health, config.exporter.probes.synthesis
    assert health.url == sim.api_url + "/health" and health.expect_empty_body and health.expect_json is None
    assert synthesis.enabled and synthesis.request.protocol == "openai"
    assert synthesis.request.url == sim.api_url + "/v1/audio/speech"
    assert [f.name for f in config.exporter.logs.files] == ["webui", "inference", "health"]
    text = config_path.read_text()
    assert "# Service: vLLM-Omni (OpenAI speech API)." in text and "voices: Vivian" in text
    # the written probes really pass against the service
    assert cli("probe", "health", "--config", str(config_path))[0] == 0
    assert cli("probe", "synthesis", "--config", str(config_path))[0] == 0
    token = (tmp_path / "cfg" / "receiver.token").read_text().strip()
    assert len(token) == 64 and (tmp_path / "cfg" / "receiver.token").stat().st_mode & 0o777 == 0o600


def test_baseline_records_from_the_vllm_omni_api_init_found(tmp_path, run_simulator):
    """docs/watch-your-own-server.md step 8: `baseline` right after `init`, before enabling L3."""
    sim = run_simulator(protocol="openai")
    assert init(tmp_path, sim.api_url)[0] == 0
    config_path = tmp_path / "cfg" / "tts-sentinel.yml"
    probes = load_config(config_path).exporter.probes
    for l3 in (probes.semantic, probes.quality):
        assert l3.request == probes.synthesis.request and not l3.enabled
    rc, out, err = cli("baseline", "--config", str(config_path))
    assert rc == 0, err
    assert "baseline recorded" in out and (tmp_path / "state" / "baseline").is_dir()


def test_snippets_name_this_exporter_receiver_and_token(tmp_path, run_simulator):
    sim = run_simulator(protocol="openai")
    assert init(tmp_path, sim.api_url, "--exporter-port", "19464", "--receiver-port", "19465",
                "--service", "tts-a")[0] == 0
    scrape = yaml.safe_load((tmp_path / "cfg" / "prometheus-scrape.yml").read_text())
    jobs = {j["job_name"]: j["static_configs"][0] for j in scrape["scrape_configs"]}
    assert jobs["tts-sentinel-exporter"] == {"targets": ["127.0.0.1:19464"], "labels": {"service": "tts-a"}}
    assert jobs["tts-sentinel-receiver"]["targets"] == ["127.0.0.1:19465"]
    am = yaml.safe_load((tmp_path / "cfg" / "alertmanager-route.yml").read_text())
    assert am["route"]["routes"][0]["receiver"] == "tts-sentinel"
    hook = am["receivers"][0]["webhook_configs"][0]
    assert hook["url"] == "http://127.0.0.1:19465/alerts"
    assert hook["http_config"]["authorization"]["credentials_file"] == str(tmp_path / "cfg" / "receiver.token")
    config = load_config(tmp_path / "cfg" / "tts-sentinel.yml")
    assert config.receiver.targets[0].match == {"service": "tts-a"}


def test_the_seed_api_is_recognised_with_its_synthesis_api(tmp_path, run_simulator):
    sim = run_simulator(protocol="seed")
    rc, out, err = init(tmp_path, sim.web_url, "--api-url", sim.api_url)
    assert rc == 0, err
    probes = load_config(tmp_path / "cfg" / "tts-sentinel.yml").exporter.probes
    assert probes.health.url == sim.web_url + "/health" and probes.health.expect_json == {"status": "ok"}
    assert probes.synthesis.request.url == sim.api_url + "/tts" and probes.synthesis.request.protocol == "seed"


def test_a_seed_front_without_its_api_leaves_synthesis_off_and_says_why(tmp_path, run_simulator, port):
    sim = run_simulator(protocol="seed")
    # the API named where nothing listens: the default guess (port 8000) may be another test's simulator
    assert init(tmp_path, sim.web_url, "--api-url", f"http://127.0.0.1:{port}")[0] == 0
    text = (tmp_path / "cfg" / "tts-sentinel.yml").read_text()
    assert not load_config(tmp_path / "cfg" / "tts-sentinel.yml").exporter.probes.synthesis.enabled
    assert "no POST /tts found" in text


def test_a_gradio_demo_gets_a_page_check_and_no_synthesis(tmp_path, gradio_url):
    rc, out, err = init(tmp_path, gradio_url)
    assert rc == 0, err
    probes = load_config(tmp_path / "cfg" / "tts-sentinel.yml").exporter.probes
    assert probes.health.url == gradio_url + "/" and probes.health.expect_json is None
    assert not probes.synthesis.enabled
    assert cli("probe", "health", "--config", str(tmp_path / "cfg" / "tts-sentinel.yml"))[0] == 0


def test_nothing_listening_is_a_clear_error(tmp_path, port):
    rc, out, err = init(tmp_path, f"http://127.0.0.1:{port}")
    assert rc == 1
    assert "nothing answers at" in err
    assert not (tmp_path / "cfg").exists()


def test_existing_files_are_kept_without_force(tmp_path, run_simulator):
    sim = run_simulator(protocol="openai")
    assert init(tmp_path, sim.api_url)[0] == 0
    config_path = tmp_path / "cfg" / "tts-sentinel.yml"
    config_path.write_text("# mine\n")
    rc, _, err = init(tmp_path, sim.api_url)
    assert rc == 2 and "--force" in err
    assert config_path.read_text() == "# mine\n"
    token = (tmp_path / "cfg" / "receiver.token").read_text()
    assert init(tmp_path, sim.api_url, "--force")[0] == 0
    assert config_path.read_text() != "# mine\n"
    assert (tmp_path / "cfg" / "receiver.token").read_text() == token  # an existing token is never replaced


def test_log_sources_follow_the_manager_when_there_is_no_log_file(tmp_path):
    systemd = ManagerFacts("systemd", "vllm.service", "vllm.service", "named")
    (source,) = detect_log_sources([], tmp_path, systemd)
    assert source.argv == ["journalctl", "-f", "-n", "0", "-o", "cat", "-u", "vllm.service"]
    assert "{since_local}" in source.history_argv and source.name == "vllm"
    docker = ManagerFacts("docker", "tts-web", "tts-infer", "named")
    sources = detect_log_sources([], None, docker)
    assert [s.argv[-1] for s in sources] == ["tts-infer", "tts-web"]
    assert sources[0].argv[:3] == ["docker", "logs", "-f"]
    kube = ManagerFacts("kubernetes", "qwen3-tts", "qwen3-tts", "named", namespace="tts")
    (source,) = detect_log_sources([], None, kube)
    assert source.argv == ["kubectl", "logs", "-f", "--tail=0", "-n", "tts", "deployment/qwen3-tts"]
    named = detect_log_sources([("vllm", Path("/var/log/vllm.log"))], tmp_path, docker)
    assert [(s.name, s.path) for s in named] == [("vllm", Path("/var/log/vllm.log"))]


def test_a_config_for_systemd_with_journald_logs_validates(tmp_path, run_simulator):
    sim = run_simulator(protocol="openai")
    rc, _, err = init(tmp_path, sim.api_url, "--manager", "systemd", "--unit", "vllm-omni.service",
                      "--log-dir", str(tmp_path / "nowhere"))
    assert rc == 0, err
    config = load_config(tmp_path / "cfg" / "tts-sentinel.yml")
    (command,) = config.exporter.logs.commands
    assert command.argv[-1] == "vllm-omni.service" and config.exporter.logs.files == []
    target = config.receiver.targets[0]
    assert target.actuator == "systemd" and target.systemd.web_unit == target.systemd.inference_unit
