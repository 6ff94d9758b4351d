"""The ``brainexpr`` command line.

Subcommands are registered in :data:`SUBCOMMANDS` (name -> module). Each module defines
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``, and is a thin
wrapper over one workflow function whose keyword arguments its flags mirror. Expected
errors (:class:`brainexpr.errors.BrainexprError`) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .._version import __version__
from ..errors import BrainexprError

#: name -> module path; the order is the order of ``brainexpr --help``.
SUBCOMMANDS = {
    "run": "brainexpr.cli.run",
    "fetch": "brainexpr.cli.fetch",
    "info": "brainexpr.cli.info",
    "embed": "brainexpr.cli.embed",
    "fit": "brainexpr.cli.fit",
    "predict": "brainexpr.cli.predict",
    "parcellate": "brainexpr.cli.parcellate",
    "atlas": "brainexpr.cli.atlas",
    "ahba": "brainexpr.cli.ahba",
    "view": "brainexpr.cli.view",
    "associate": "brainexpr.cli.associate",
    "vae": "brainexpr.cli.vae",
    "phantom": "brainexpr.cli.phantom",
    "benchmark": "brainexpr.cli.benchmark",
}

logger = logging.getLogger("brainexpr")


class _StderrHandler(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is when a record is emitted.

    ``main`` may run several times in one process (tests, notebooks) while ``sys.stderr``
    is swapped; a handler holding the stream of an earlier call would write to a closed file.
    """

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ sets it; the property always wins
        pass


def _configure_logging(verbosity: int, log_file: str | None = None) -> None:
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    root = logging.getLogger("brainexpr")
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, "_brainexpr_cli", False):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler._brainexpr_cli = True
    root.addHandler(handler)
    if log_file:
        file_handler = logging.FileHandler(log_file)
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        file_handler._brainexpr_cli = True
        root.addHandler(file_handler)


def add_overwrite_argument(parser) -> None:
    """``--overwrite``: the one output policy of every command (:mod:`brainexpr.outputs`)."""
    parser.add_argument("--overwrite", action="store_true",
                        help="write into an output folder that holds other files; only files "
                             "brainexpr wrote there are replaced, nothing else is touched")


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (not 5-10 lines of usage)."""

    def error(self, message):
        message = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered subcommand."""
    parser = _OneLineParser(
        prog="brainexpr",
        description="Continuous, validated maps of human brain gene expression (AHBA) with "
                    "implicit neural representations, and their use in Alzheimer's research.",
    )
    parser.add_argument("--version", action="version", version=f"brainexpr {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument("--progress", choices=["auto", "on", "off"], default="auto",
                        help="progress bars (default: only on a terminal)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_path in SUBCOMMANDS.items():
        module = importlib.import_module(module_path)
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        sub.add_argument("--data-dir", default=argparse.SUPPRESS,
                         help="reference data folder (default: $BRAINEXPR_DATA, ../shared/data "
                              "next to the checkout, then ~/brainexpr-data)")
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``brainexpr`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    if not hasattr(args, "data_dir"):
        args.data_dir = None
    _configure_logging(-1 if args.quiet else args.verbose)
    from ..utils import set_progress

    set_progress({"auto": None, "on": True, "off": False}[args.progress])
    try:
        return int(args._run(args) or 0)
    except BrainexprError as exc:
        print(f"brainexpr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("brainexpr: interrupted", file=sys.stderr)
        return 130
