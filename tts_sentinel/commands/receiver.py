"""`tts-sentinel receiver`: the Alertmanager webhook receiver under uvicorn."""

from __future__ import annotations

import argparse
import gc
import ipaddress
import logging
import signal
import socket
import ssl
import sys
import threading
from pathlib import Path

import uvicorn

from tts_sentinel import __version__
from tts_sentinel.config import ConfigError, config_source, load_config
from tts_sentinel.logsetup import add_logging_arguments, configure_from, fields
from tts_sentinel.receiver.app import create_app
from tts_sentinel.receiver.auth import read_secret, read_token
from tts_sentinel.receiver.child import startup_of
from tts_sentinel.receiver.priority import front_priority
from tts_sentinel.receiver.service import ReceiverService

log = logging.getLogger("tts_sentinel.receiver")
INSECURE_WARNING_SECONDS = 300.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel receiver`."""
    parser.add_argument("--config", help="YAML config file (default: $TTS_SENTINEL_CONFIG, else defaults)")
    parser.add_argument("--token-file", type=Path, help="file holding the bearer token (overrides the config)")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="accept requests without a token, on a loopback address only (never in production)",
    )
    parser.add_argument("--host", help="listen address (overrides receiver.listen_host)")
    parser.add_argument("--port", type=int, help="listen port (overrides receiver.listen_port)")
    parser.add_argument("--dry-run", action="store_true", help="journal what would run, run nothing")
    add_logging_arguments(parser)
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate: serve HTTPS (overrides receiver.tls_cert_file)")
    parser.add_argument("--tls-key", type=Path, help="its PEM private key, mode 0600 (overrides receiver.tls_key_file)")


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback address (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def warn_insecure(where: str, stop: threading.Event, every: float = INSECURE_WARNING_SECONDS) -> None:
    """Log the --insecure WARNING now and every `every` seconds until `stop` is set."""
    while True:
        log.warning(
            "INSECURE: running with --insecure: any local process that reaches %s can make this receiver restart "
            "services, clear caches and reset GPUs without a token; set receiver.token_file (chmod 600)",
            where,
        )
        if stop.wait(every):
            return


def check_tls(cert: Path | None, key: Path | None) -> str | None:
    """Why the HTTPS pair cannot be served (one sentence), or None when it can or none is set."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        return "give both --tls-cert and --tls-key (or receiver.tls_cert_file and tls_key_file), or neither"
    try:
        read_secret(key, "TLS private key")  # a key others can read is refused with the chmod to run
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except ValueError as exc:
        return str(exc)
    except (OSError, ssl.SSLError) as exc:
        return f"cannot serve HTTPS with certificate {cert} and key {key}: {exc}"
    return None


def _note_stop_signal(signum: int, frame: object) -> None:
    log.info("receiver stopping (signal %d): the queued posts are answered, the running jobs end "
             "(or are left to the next start past receiver.stop_grace_seconds)", signum)


def run(args: argparse.Namespace) -> int:
    """Load the config, check the token, start workers and serve until interrupted."""
    try:
        config = load_config(args.config)
        log_format, log_level = configure_from(args, config.logging)
    except (ConfigError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    rc = config.receiver
    updates: dict[str, object] = {}
    if args.host:
        updates["listen_host"] = args.host
    if args.port:
        updates["listen_port"] = args.port
    if args.dry_run:
        updates["dry_run"] = True
    if args.tls_cert or args.tls_key:
        updates.update(tls_cert_file=args.tls_cert, tls_key_file=args.tls_key)
    if updates:
        rc = rc.model_copy(update=updates)
    tls_problem = check_tls(rc.tls_cert_file, rc.tls_key_file)
    if tls_problem:
        print(f"receiver: {tls_problem}", file=sys.stderr)
        return 2
    try:
        token = read_token(args.token_file or rc.token_file)
    except ValueError as exc:
        print(f"receiver: {exc}", file=sys.stderr)
        return 2
    if token is None and not args.insecure:
        print(
            "receiver: no bearer token configured; set receiver.token_file or --token-file "
            "(or pass --insecure to accept unauthenticated requests on a loopback address, never in production).",
            file=sys.stderr,
        )
        return 2
    insecure = token is None
    if insecure and not is_loopback(rc.listen_host):
        print(
            f"receiver: --insecure refuses to listen on {rc.listen_host}: without a token only a loopback "
            "address (127.0.0.1 or ::1) is allowed; set receiver.token_file to listen elsewhere.",
            file=sys.stderr,
        )
        return 2
    if not rc.targets:
        print(
            "receiver: receiver.targets is empty, so no alert may act on anything; add a target whose `match` "
            "names your service's labels (e.g. `match: {service: qwen3-tts}`), see receiver/README.md.",
            file=sys.stderr,
        )
        return 2
    service_kwargs = {"config": rc, "token": token, "logs_config": config.exporter.logs}
    split: dict[str, object] = {}
    if rc.worker_process:
        split = {"role": "front", "split_startup": startup_of("worker", service_kwargs, log_format, log_level)}
        if rc.intake_process:
            split["intake_startup"] = startup_of("intake", service_kwargs, log_format, log_level)
    try:
        service = ReceiverService(**service_kwargs, **split)
    except (ValueError, OSError) as exc:
        print(f"receiver: {exc}", file=sys.stderr)
        return 2
    service.metrics.insecure.set(1 if insecure else 0)
    token_file = args.token_file or rc.token_file
    log.info(
        "receiver starting",
        extra=fields(
            version=__version__, listen=f"{rc.listen_host}:{rc.listen_port}",
            config=config_source(args.config),
            auth="none (--insecure)" if insecure else f"bearer token from {token_file}",
            targets=[f"{t.name}({t.actuator})" for t in rc.targets],
            sources=[f.name for f in config.exporter.logs.files] + [c.name for c in config.exporter.logs.commands],
            dry_run=rc.dry_run, journal=rc.journal_path, exporter=rc.exporter_url,
            alertmanager=rc.alertmanager_url or "none (no paging)",
        ),
    )
    if service.role == "front":
        # Before any thread or child starts: they take the nice of the thread that creates them.
        front_priority(rc.front_nice, rc.worker_nice)
    stop_warning = threading.Event()
    if insecure:
        where = f"{rc.listen_host}:{rc.listen_port}"
        threading.Thread(target=warn_insecure, args=(where, stop_warning), name="insecure-warning", daemon=True).start()
    try:
        service.start()
    except RuntimeError as exc:
        print(f"receiver: {exc}", file=sys.stderr)
        return 2
    app = create_app(service)
    # What start-up built (config, models, app, imported modules) lives as long as the process: out
    # of the collector's sight, a full collection no longer walks it (a storm's allocations set
    # collections off; walking ~10^5 long-lived objects each time was a third of the loop's CPU).
    gc.collect()
    gc.freeze()
    if service.role == "front":
        # Two busy threads, the HTTP loop and the intake: the intake gives up the interpreter lock
        # at each SQLite call, and got it back only when the loop blocked or after the default
        # 5 ms interval; at 1 ms a storm's new incidents were answered in half the time.
        sys.setswitchinterval(0.001)
    # uvicorn raises the SIGTERM or SIGINT it caught again once it has shut down, with the handler
    # it found installed: the default one would end the process before `service.stop()` below (the
    # running jobs cut off, the worker process told nothing). Ours only notes it.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _note_stop_signal)
    try:
        uvicorn.run(
            app,
            host=rc.listen_host,
            port=rc.listen_port,
            log_level="warning",
            log_config=None,  # uvicorn's own lines go through the escaping handler above
            access_log=False,
            # The peer's own address, never an X-Forwarded-For header: the rate limit and the refusal
            # log key on it, and any local process could otherwise claim another's (one layer less too).
            proxy_headers=False,
            ssl_certfile=str(rc.tls_cert_file) if rc.tls_cert_file else None,
            ssl_keyfile=str(rc.tls_key_file) if rc.tls_key_file else None,
        )
    finally:
        stop_warning.set()
        if service.stop():  # a job still runs past the grace (one process: worker_process false)
            service.abandon("receiver: stopping", 0)
    return 0
