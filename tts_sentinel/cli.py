"""`tts-sentinel`: one program, one subcommand per job.

Each subcommand is one module of `tts_sentinel.commands`, which exposes
`add_arguments(parser)` and `run(args) -> int`. Modules are imported only when
their subcommand runs, so `--help` stays fast and a broken optional part cannot
take the others down.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tts_sentinel import __version__
from tts_sentinel.commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="tts-sentinel", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"tts-sentinel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        # Arguments are added lazily, only for the subcommand being run.
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        args = parser.parse_args(argv)  # prints help, version or the error
        parser.print_help()
        return 2
    name = argv[0]
    try:
        module = importlib.import_module(COMMANDS[name][0])
    except ModuleNotFoundError as exc:
        if exc.name != COMMANDS[name][0]:
            raise
        print(f"tts-sentinel {name} is not available in this installation ({COMMANDS[name][0]} is missing).")
        return 2
    sub = argparse.ArgumentParser(prog=f"tts-sentinel {name}", description=COMMANDS[name][1])
    module.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
