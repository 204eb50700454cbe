"""The receiver serves HTTPS (`--tls-cert/--tls-key`, or receiver.tls_cert_file/tls_key_file), and a real
Alertmanager delivers to it through `http_config.tls_config` trusting its self-signed certificate;
a key others can read, or a key that is not the certificate's, stops it at start with one sentence."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from support import free_port, require_binary

from tests.security.conftest import AUTH, CLI, TOKEN, alert, command_target, payload, receiver_section, wait_for


def self_signed(directory: Path, name: str = "receiver") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key (EC P-256), written as PEM; the key 0600."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tts-sentinel receiver test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


class HttpsReceiver:
    def __init__(self, tmp_path: Path, section: dict, *args: str) -> None:
        config = tmp_path / "sentinel.yml"
        config.write_text(yaml.safe_dump({"receiver": section}))
        token = tmp_path / "receiver.token"
        token.write_text(TOKEN + "\n")
        token.chmod(0o600)
        self.token_file = token
        self.log = tmp_path / "receiver.out"
        self.port = section["listen_port"]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([*CLI, "receiver", "--config", str(config), "--token-file", str(token), *args],
                                         stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)


@pytest.fixture
def https_receiver(tmp_path):
    started = []

    def start(section: dict, *args: str) -> HttpsReceiver:
        started.append(HttpsReceiver(tmp_path, section, *args))
        return started[-1]

    yield start
    for r in started:
        r.stop()


def test_https_only_with_the_certificate_trusted_and_alertmanager_delivers_through_tls_config(
        tmp_path, https_receiver):
    alertmanager = require_binary("prometheus-alertmanager", "alertmanager")
    cert, key = self_signed(tmp_path)
    ops = tmp_path / "ops"
    section = receiver_section(tmp_path, [command_target("t", ops)])
    receiver = https_receiver(section, "--tls-cert", str(cert), "--tls-key", str(key))
    base = f"https://127.0.0.1:{receiver.port}"
    trust = ssl.create_default_context(cafile=str(cert))

    def up() -> bool:
        assert receiver.proc.poll() is None, receiver.log.read_text()
        try:
            return httpx.get(base + "/healthz", verify=trust, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=60, what="the receiver on HTTPS")
    with pytest.raises(httpx.HTTPError):  # plain HTTP on the same port gets no answer
        httpx.get(f"http://127.0.0.1:{receiver.port}/healthz", timeout=5).raise_for_status()
    with pytest.raises(httpx.ConnectError):  # a client that does not trust the certificate stops
        httpx.get(base + "/healthz", timeout=5)
    assert httpx.post(base + "/alerts", json=payload(alert(service="t")), verify=trust).status_code == 401

    # A real Alertmanager posts the alert over HTTPS, with the bearer token, trusting the certificate.
    am_port = free_port()
    am_config = tmp_path / "alertmanager.yml"
    am_config.write_text(yaml.safe_dump({
        "route": {"receiver": "tts-sentinel", "group_wait": "0s", "group_interval": "1s", "group_by": ["..."]},
        "receivers": [{"name": "tts-sentinel", "webhook_configs": [{
            "url": base + "/alerts", "send_resolved": False,
            "http_config": {"authorization": {"type": "Bearer", "credentials_file": str(receiver.token_file)},
                            "tls_config": {"ca_file": str(cert)}}}]}],
    }))
    (tmp_path / "am-data").mkdir()
    with (tmp_path / "alertmanager.out").open("wb") as out:
        am = subprocess.Popen([alertmanager, f"--config.file={am_config}", f"--storage.path={tmp_path / 'am-data'}",
                               f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
                              stdout=out, stderr=subprocess.STDOUT)
    try:
        am_url = f"http://127.0.0.1:{am_port}"
        wait_for(lambda: _ok(am_url + "/-/ready"), timeout=60, what="Alertmanager")
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        sent = httpx.post(am_url + "/api/v2/alerts", json=[{"labels": alert(service="t")["labels"], "startsAt": now}])
        assert sent.status_code == 200, sent.text
        jobs = wait_for(lambda: httpx.get(base + "/actions", headers=AUTH, verify=trust).json(), timeout=60,
                        what="a job from Alertmanager's delivery over HTTPS")
        assert jobs[0]["target"] == "t"
        wait_for(lambda: ops.exists() and "restart" in ops.read_text(), timeout=30, what="the restart to run")
    finally:
        am.terminate()
        am.wait(15)
    log = (tmp_path / "alertmanager.out").read_text()
    assert "x509" not in log and "certificate" not in log.lower(), log  # no failed handshake on the way


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_key_others_can_read_is_refused_with_the_chmod(tmp_path):
    cert, key = self_signed(tmp_path)
    key.chmod(0o644)
    r = _start_and_fail(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key))
    assert f"chmod 600 {key}" in r.stderr


def test_a_key_that_is_not_the_certificates_is_refused(tmp_path):
    cert, _ = self_signed(tmp_path, "one")
    _, other_key = self_signed(tmp_path, "two")
    r = _start_and_fail(tmp_path, "--tls-cert", str(cert), "--tls-key", str(other_key))
    assert "cannot serve HTTPS" in r.stderr and str(cert) in r.stderr


def test_a_certificate_without_its_key_is_a_config_error(tmp_path):
    cert, _ = self_signed(tmp_path)
    section = {**receiver_section(tmp_path, [command_target("t", tmp_path / "ops")]), "tls_cert_file": str(cert)}
    config = tmp_path / "only-cert.yml"
    config.write_text(yaml.safe_dump({"receiver": section}))
    r = subprocess.run([*CLI, "check-config", str(config)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "tls_key_file" in (r.stdout + r.stderr)


def _start_and_fail(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    section = receiver_section(tmp_path, [command_target("t", tmp_path / "ops")])
    config = tmp_path / "sentinel.yml"
    config.write_text(yaml.safe_dump({"receiver": section}))
    token = tmp_path / "receiver.token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    r = subprocess.run([*CLI, "receiver", "--config", str(config), "--token-file", str(token), *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert not Path(section["journal_path"]).exists(), "it stopped before opening anything"
    return r
