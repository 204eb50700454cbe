"""Deployment artefacts from one source, checked by the tools that consume them:
systemd-analyze for the units, the Kubernetes schemas and promtool for the manifests."""

from __future__ import annotations

import configparser
import io
import json
import re
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml
from support import require_binary

from tts_sentinel.cli import main
from tts_sentinel.config import parse_config
from tts_sentinel.onboarding.kubernetes import KubernetesPlan, manifests
from tts_sentinel.runbook_urls import runbook_url, with_runbook_urls

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
SHIPPED_BINARY = "/opt/tts-sentinel/bin/tts-sentinel"


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def shipped_rules() -> list[dict]:
    return [g for p in sorted((ROOT / "rules").glob("*.rules.yml")) for g in yaml.safe_load(p.read_text())["groups"]]


# --- systemd ---------------------------------------------------------------------------------

def test_deploy_systemd_writes_both_units_and_the_user(tmp_path):
    rc, out, _ = cli("deploy", "systemd", "--out", str(tmp_path))
    assert rc == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "60-tts-sentinel.rules", "tts-sentinel-exporter.service", "tts-sentinel-receiver.service",
        "tts-sentinel.sysusers.conf"]
    assert "systemd-sysusers" in out
    assert cli("deploy", "systemd", "--out", str(tmp_path))[0] == 2  # no silent overwrite


# polkit evaluates rules in its own JavaScript engine (duktape/mozjs); node runs the same rule with the
# same API (polkit.addRule, action.id, action.lookup(key), subject.user, polkit.Result.YES).
POLKIT_EVAL = """
const fs = require("fs"); const rules = [];
globalThis.polkit = {Result: {YES: "yes", NO: "no"}, addRule: (f) => rules.push(f)};
eval(fs.readFileSync(process.argv[2], "utf8"));
const cases = JSON.parse(process.argv[3]);
console.log(JSON.stringify(cases.map((c) => rules.map((r) => r({id: c.id, lookup: (k) => c[k]}, {user: c.user}))
  .find((x) => x !== undefined) || null)));
"""


def test_the_polkit_rule_allows_exactly_the_configured_units_verbs_and_user(tmp_path):
    node = require_binary("node")
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"receiver": {"token_file": str(tmp_path / "t"), "targets": [{
        "name": "tts", "match": {"service": "tts"}, "actuator": "systemd",
        "systemd": {"web_unit": "my-web.service", "inference_unit": "my-engine.service"}}]}}))
    assert cli("deploy", "systemd", "--out", str(tmp_path / "out"), "--config", str(config))[0] == 0
    rule = tmp_path / "out" / "60-tts-sentinel.rules"
    manage = "org.freedesktop.systemd1.manage-units"
    cases = [
        {"id": manage, "unit": "my-engine.service", "verb": "restart", "user": "tts-sentinel"},
        {"id": manage, "unit": "my-web.service", "verb": "kill", "user": "tts-sentinel"},
        {"id": manage, "unit": "sshd.service", "verb": "stop", "user": "tts-sentinel"},  # another unit
        {"id": manage, "unit": "my-web.service", "verb": "restart", "user": "mallory"},  # another user
        {"id": manage, "unit": "my-web.service", "verb": "enable", "user": "tts-sentinel"},  # another verb
        {"id": "org.freedesktop.systemd1.manage-unit-files", "unit": "my-web.service", "verb": "restart",
         "user": "tts-sentinel"},  # another action
    ]
    script = tmp_path / "eval.js"
    script.write_text(POLKIT_EVAL)
    done = subprocess.run([node, str(script), str(rule), json.dumps(cases)], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["yes", "yes", None, None, None, None]


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_units_pass_systemd_analyze_verify(unit, tmp_path):
    analyze = require_binary("systemd-analyze")
    # verify checks that ExecStart's binary exists: point it at this installation's tts-sentinel
    binary = Path(sys.executable).with_name("tts-sentinel")
    assert binary.exists()
    text = unit.read_text()
    assert SHIPPED_BINARY in text
    copy = tmp_path / unit.name
    copy.write_text(text.replace(SHIPPED_BINARY, str(binary)))
    done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), done.stderr
    security = subprocess.run([analyze, "security", "--offline=yes", str(copy)], capture_output=True, text=True,
                              timeout=60)
    exposure = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout).group(1))
    assert exposure <= 3.0, security.stdout[-2000:]


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_units_are_hardened_and_restart(unit):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(unit.read_text())
    service = parser["Service"]
    assert service["User"] == "tts-sentinel"
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "yes" and service["ReadWritePaths"] == "/var/lib/tts-sentinel"
    assert service["CapabilityBoundingSet"] == "" and service["Restart"] == "on-failure"
    assert "--config /etc/tts-sentinel/config.yml" in service["ExecStart"]


# --- Kubernetes -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("k8s")
    rc, _, err = cli("deploy", "kubernetes", "--out", str(out), "--namespace", "tts", "--image", "reg/tts:1",
                     "--inference-deployment", "vllm", "--web-deployment", "vllm")
    assert rc == 0, err
    return out


def docs_of(folder: Path) -> list[dict]:
    return [d for p in sorted(folder.glob("*.yaml")) if p.name != "kustomization.yaml"
            for d in yaml.safe_load_all(p.read_text()) if d]


def test_builtin_kinds_are_valid_against_the_kubernetes_schemas(written):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    version = kubernetes_validate.utils.latest_version()
    builtin = [d for d in docs_of(written) if not d["apiVersion"].startswith("monitoring.coreos.com")]
    assert {d["kind"] for d in builtin} == {"DaemonSet", "Deployment", "Service", "ServiceAccount", "Role",
                                            "RoleBinding", "PersistentVolumeClaim", "ConfigMap"}
    for doc in builtin:
        kubernetes_validate.validate(doc, version, strict=True)  # raises on any schema error
        assert doc["metadata"]["namespace"] == "tts"


def test_the_prometheusrule_is_the_rules_folder_with_runbook_links(written, tmp_path):
    (rule,) = yaml.safe_load_all((written / "prometheusrule.yaml").read_text())
    base = "http://tts-sentinel-receiver.tts.svc:9465/runbooks"
    assert rule["spec"]["groups"] == with_runbook_urls({"groups": shipped_rules()}, base)["groups"]
    first = next(r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r)  # not a recording rule
    assert first["annotations"]["runbook_url"] == runbook_url(base, first["alert"])
    promtool = require_binary("promtool")
    (tmp_path / "spec.yml").write_text(yaml.safe_dump(rule["spec"]))
    done = subprocess.run([promtool, "check", "rules", str(tmp_path / "spec.yml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_monitors_select_our_pods_and_service_and_label_them_for_the_rules_and_the_receiver(written):
    docs = docs_of(written)
    by_kind = {d["kind"]: d for d in docs}
    daemonset, service = by_kind["DaemonSet"], next(d for d in docs if d["metadata"]["name"] == "tts-sentinel-receiver"
                                                    and d["kind"] == "Service")
    pod_monitor, service_monitor = by_kind["PodMonitor"], by_kind["ServiceMonitor"]
    assert pod_monitor["spec"]["selector"]["matchLabels"].items() <= daemonset["spec"]["template"]["metadata"][
        "labels"].items()
    assert service_monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    port_names = {p["name"] for c in daemonset["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] in port_names
    assert service_monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    relabel = {r["targetLabel"]: r["replacement"] for r in pod_monitor["spec"]["podMetricsEndpoints"][0]["relabelings"]}
    assert relabel == {"job": "tts-sentinel-exporter", "service": "qwen3-tts"}


def test_rbac_allows_only_what_the_kubernetes_actuator_does(written):
    role = next(d for d in docs_of(written) if d["kind"] == "Role")
    assert role["rules"] == [{"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["vllm"],
                              "verbs": ["get", "patch"]}]
    actuator = (ROOT / "receiver" / "actuators" / "kubernetes.py").read_text()
    assert "httpx.patch(" in actuator and "/apis/apps/v1/namespaces/" in actuator  # what the Role grants


def test_the_configmap_holds_a_valid_config_for_the_cluster(written):
    (config_map,) = yaml.safe_load_all((written / "config.yaml").read_text())
    config = parse_config(config_map["data"]["config.yml"])
    assert config.receiver.targets[0].actuator == "kubernetes"
    assert config.receiver.targets[0].kubernetes.namespace == "tts"
    assert config.exporter.listen_host == "0.0.0.0"
    images = {c["image"] for d in docs_of(written) if d["kind"] in ("DaemonSet", "Deployment")
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {"reg/tts:1"}
    kustomization = yaml.safe_load((written / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in written.glob("*.yaml")
                                                        if p.name != "kustomization.yaml")


def test_a_given_config_goes_into_the_configmap_as_is(tmp_path):
    config = ROOT / "tts-sentinel.yml"
    files = manifests(KubernetesPlan(config_text=config.read_text()))
    assert files["config.yaml"][0]["data"]["config.yml"] == config.read_text()
    (tmp_path / "bad.yml").write_text("exporter: {nope: 1}\n")
    rc, _, err = cli("deploy", "kubernetes", "--out", str(tmp_path / "out"), "--config", str(tmp_path / "bad.yml"))
    assert rc == 2 and "exporter.nope" in err


# --- rules and compose --------------------------------------------------------------------------

def test_deploy_rules_writes_rules_promtool_accepts_with_the_chosen_runbook_base(tmp_path):
    promtool = require_binary("promtool")
    rc, _, _ = cli("deploy", "rules", "--out", str(tmp_path), "--runbook-base", "https://wiki.example/tts#{alert}")
    assert rc == 0
    written = sorted(tmp_path.glob("*.rules.yml"))
    assert [p.name for p in written] == sorted(p.name for p in (ROOT / "rules").glob("*.rules.yml"))
    done = subprocess.run([promtool, "check", "rules", *map(str, written)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    rule = next(r for g in yaml.safe_load(written[0].read_text())["groups"] for r in g["rules"] if "alert" in r)
    assert rule["annotations"]["runbook_url"] == f"https://wiki.example/tts#{rule['alert']}"


def test_docker_compose_file_is_valid_for_the_compose_client(tmp_path):
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker compose client is not installed here")
    (tmp_path / "secrets").mkdir()
    done = subprocess.run([docker, "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
