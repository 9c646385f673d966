"""The ``vocalfront`` command: a thin layer over the Python API.

Each sub-command lives in its own module of this package with two functions:
``add_arguments(parser)`` and ``run(args) -> int`` (the exit status), and may list its checked
options in ``OPTIONS`` (see :mod:`.options`: checked before ``run``). Errors meant for users
(:class:`ValueError`, :class:`OSError`) are printed on one line, without a traceback, and so
are warnings (``vocalfront train: warning: ...``); SIGTERM is handled like Ctrl-C (exit status
143, 130 for Ctrl-C).

Start-up stays fast (``vocalfront --help``, ``--version`` and argument errors do not import
torch): only the chosen sub-command's module is imported to build its options, and those
modules import the heavy parts of the library inside ``run``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence

from .. import __version__
from .options import check_arguments, check_options

# sub-command name -> (module in this package, one-line help), in the order users meet them
COMMANDS: dict[str, tuple[str, str]] = {
    "detect": ("detect", "find the singing in audio files and write label files"),
    "evaluate": ("evaluate", "score a detector on a labelled dataset (frame-wise protocol metrics)"),
    "train": ("train", "train a singing-voice detector from a TOML configuration"),
    "experiment": ("experiment", "compare front-ends over seeds: train, evaluate, report (resumable)"),
    "theory": ("theory", "measure how closely each filter-bank design reproduces the mel-spectrogram"),
    "data": ("data", "check datasets: readers, labels, lengths"),
}
DESCRIPTION = """Find the singing in music with a CNN on designed or learnable filter-bank
front-ends (Dörfler et al. 2020); train, evaluate and compare such detectors."""
EXAMPLES = """examples:
  vocalfront detect song.flac --plot                  song.lab and song.timeline.png beside it
  vocalfront detect music/ --out labels/ --format lab,csv,json
  vocalfront evaluate --data mir1k/                   frame error, AUROC on labelled clips
  vocalfront COMMAND --help                           the options of one command"""


def version_text() -> str:
    """``vocalfront 0.3.0.dev0 (packaged model default.pt, sha256 1a2b3c4d5e6f)``: the package
    version and the packaged model's digest, so two different packaged models never print the
    same text."""
    from ..pretrained import default_model_path
    from ..provenance import file_digest

    path = default_model_path()
    model = f"packaged model {path.name}, sha256 {file_digest(path)}" if path.is_file() \
        else "no packaged model"
    return f"vocalfront {__version__} ({model})"


class _VersionAction(argparse.Action):
    """``--version``: print :func:`version_text` and exit (computed only when asked for)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version and the packaged model's digest, then exit")

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(version_text())
        parser.exit()


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``vocalfront`` parser; only ``command``'s options are added (``None``: every command's).

    The other sub-commands are still listed (name and help), so ``--help`` and choice errors are
    complete without importing their modules.
    """
    parser = argparse.ArgumentParser(prog="vocalfront", description=DESCRIPTION, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if command is None or command == name:
            module = importlib.import_module(f".{module_name}", __name__)
            module.add_arguments(command_parser)
            command_parser.set_defaults(_run=module.run, _options=getattr(module, "OPTIONS", {}))
    return parser


def chosen_command(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (the first word not starting with ``-``), if known."""
    words = [word for word in argv if not word.startswith("-")]
    return words[0] if words and words[0] in COMMANDS else None


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


@contextlib.contextmanager
def _warnings_on_one_line(command: str) -> Iterator[None]:
    """Print each warning as ``vocalfront COMMAND: warning: MESSAGE`` (its category named when
    it is not a plain :class:`UserWarning`) while the command runs, then restore."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        kind = "" if category is UserWarning else f" ({category.__name__})"
        print(f"vocalfront {command}: warning{kind}: {message}", file=file or sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(chosen_command(argv))
    args = parser.parse_args(argv)
    try:
        with _sigterm_as_interrupt(), _warnings_on_one_line(args.command):
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
