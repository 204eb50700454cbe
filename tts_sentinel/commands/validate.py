"""`tts-sentinel validate --candidate URL`: the full probe battery against a new model version.

Exit status 0 when the candidate passes every check, 1 when one fails, 2 when the validation
cannot run (bad config, bad URL). With `--record` a pass is written to the target's version
history (model id, weights sha256, commit) and the baselines are re-recorded for the new model
id; a failure records nothing and switches nothing. For a Docker target the record also holds
the image the candidate's container runs (its immutable id and its tag), which the rollback tier
recreates the container from. While it runs, `--protect TARGET` marks the
current version protected (no heavy or rollback tier on it) until the validation ends.
"""

from __future__ import annotations

import argparse
import json
import sys

from tts_sentinel.config import ConfigError, load_config
from tts_sentinel.exporter.baseline import record_baseline
from tts_sentinel.exporter.probes.speech import SpeechError
from tts_sentinel.exporter.validation import ValidationError, retarget, validate_candidate
from tts_sentinel.receiver.actuators import ActuatorError
from tts_sentinel.receiver.actuators.docker_rollback import image_of
from tts_sentinel.receiver.config import TargetConfig
from tts_sentinel.receiver.versions import VersionError, VersionHistory, VersionRecord


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel validate`."""
    parser.add_argument("--candidate", required=True, help="base URL of the new deployment, e.g. http://127.0.0.1:8001")
    parser.add_argument("--config", help="YAML config file (sections exporter.probes and receiver)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-compare", action="store_true", help="do not run the checks against the current version")
    parser.add_argument("--target", help="receiver target the candidate replaces (for --protect and --record)")
    parser.add_argument("--protect", type=float, metavar="SECONDS", default=0.0,
                        help="protect the target's current version for at most SECONDS while validating")
    parser.add_argument("--record", metavar="VERSION",
                        help="on pass, record VERSION as the switch (a folder under the target's versions dir; "
                             "any name for a Docker or Kubernetes target)")
    parser.add_argument("--commit", default="", help="commit of the candidate's service code, for the record")
    parser.add_argument("--image-from", metavar="CONTAINER",
                        help="Docker targets: the container running the candidate, whose image is recorded with "
                             "the version (default: the target's inference container: the candidate deployed in place)")


def run(args: argparse.Namespace) -> int:
    """Validate; print the per-check verdicts and figures."""
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    history = target = None
    if args.target or args.record or args.protect:
        try:
            target = _target(config, args.target)
            history = VersionHistory.of(target)
        except VersionError as exc:
            print(exc, file=sys.stderr)
            return 2
    try:
        if history is not None and args.protect:
            history.protect(args.protect, f"candidate {args.candidate} under validation")
        try:
            report = validate_candidate(config.exporter.probes, args.candidate, compare=not args.no_compare)
        finally:
            if history is not None and args.protect:
                history.unprotect()
    except ValidationError as exc:
        print(f"validation not run: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print("\n".join(report.lines()))
    if not report.passed:
        return 1
    if args.record and history is not None and target is not None:
        return _record(config, target, history, report, args)
    return 0


def _target(config, target_name: str | None) -> TargetConfig:  # noqa: ANN001 - the loaded config
    targets = {t.name: t for t in config.receiver.targets}
    if target_name not in targets:
        raise VersionError(f"--target must name a receiver target; configured: {', '.join(targets) or 'none'}")
    return targets[target_name]


def _record(config, target: TargetConfig, history: VersionHistory, report, args: argparse.Namespace) -> int:  # noqa: ANN001
    model = report.candidate_model
    model_id = model.get("model_id") or args.record
    image = None
    if target.actuator == "docker":
        container = args.image_from or target.docker.inference_container
        try:
            image = image_of(target.docker, container)
        except ActuatorError as exc:
            print(f"validation passed but the switch was not recorded: the image of container {container} cannot "
                  f"be read ({exc}); a Docker version without its image cannot be rolled back to", file=sys.stderr)
            return 2
    record = VersionRecord(version=args.record, model_id=model_id, weights_sha256=model.get("weights_sha256") or "",
                           commit=args.commit, validated=True, image=image)
    try:
        history.record_switch(record)
    except VersionError as exc:
        print(f"validation passed but the switch was not recorded: {exc}", file=sys.stderr)
        return 2
    probes = config.exporter.probes
    candidate = probes.model_copy(update={
        name: retarget(getattr(probes, name), report.candidate_url) for name in ("semantic", "quality")})
    try:
        manifest = record_baseline(candidate, model_id)
    except (SpeechError, OSError) as exc:
        print(f"switch recorded, baselines not re-recorded for {model_id}: {exc}", file=sys.stderr)
        return 1
    # stdout stays one JSON document with --json
    print(f"switch recorded: {args.record} ({model_id}); baselines re-recorded: {manifest}",
          file=sys.stderr if args.json else sys.stdout)
    return 0
