"""The ``vocalfront`` command: a thin layer over the Python API.

Each sub-command lives in its own module of this package with two functions:
``add_arguments(parser)`` and ``run(args) -> int`` (the exit status), and may list its checked
options in ``OPTIONS`` (see :mod:`.options`: checked before ``run``). Errors meant for users
(:class:`ValueError`, :class:`OSError`) are printed on one line, without a traceback; SIGTERM
is handled like Ctrl-C (exit status 143, 130 for Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
from collections.abc import Iterator

from .options import check_arguments, check_options

# sub-command name -> (module in this package, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "theory": ("theory", "measure how closely each filter-bank design reproduces the mel-spectrogram"),
    "data": ("data", "check datasets: readers, labels, lengths"),
    "detect": ("detect", "find the singing in audio files and write label files"),
    "evaluate": ("evaluate", "score a detector on a labelled dataset (frame-wise protocol metrics)"),
    "train": ("train", "train a singing-voice detector from a TOML configuration"),
    "experiment": ("experiment", "compare front-ends over seeds: train, evaluate, report (resumable)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vocalfront", description=__doc__.splitlines()[0])
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"vocalfront {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f".{module_name}", __name__)
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run, _options=getattr(module, "OPTIONS", {}))
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (batch schedulers, ``kill``), raised where the process is, so that it unwinds as
    Ctrl-C does: temporary files removed, outputs complete or absent."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Handle SIGTERM like SIGINT while the command runs (main thread only), then restore."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    try:
        with _sigterm_as_interrupt():
            check_arguments(argv)
            check_options(vars(args), args._options)
            return int(args._run(args) or 0)
    except (ValueError, OSError) as error:
        print(f"vocalfront {args.command}: error: {error}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"vocalfront {args.command}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"vocalfront {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
