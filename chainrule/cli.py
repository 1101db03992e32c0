"""The ``chainrule`` command (also ``python -m chainrule``).

Subcommands register themselves in :data:`COMMANDS`: each is a function that adds its arguments
to a parser and returns the function that runs it.

Errors. A user's mistake (a bad option value, a missing file, a damaged or foreign file, a
missing optional package) prints one line, ``chainrule <command>: error: ...``, and exits 2;
``--traceback`` shows the whole traceback instead. Ctrl-C exits 130 with one line (``chainrule
train`` says how to resume). Anything else is a bug and prints its traceback. Numeric options
are checked by argparse with the types below (:func:`positive_int`, ...), so ``--epochs 0`` is
refused before anything is loaded.
"""

from __future__ import annotations

import argparse
import math
import sys

import chainrule

COMMANDS: dict = {}

#: Exceptions that mean the user asked for something that cannot be done (exit 2, one line).
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
               IsADirectoryError, PermissionError, ImportError)


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    return _number(text, int, lambda v: v >= 1, "an integer >= 1")


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    return _number(text, int, lambda v: v >= 0, "an integer >= 0")


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    return _number(text, float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0")


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    return _number(text, float, lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")


def fraction(text: str) -> float:
    """An argparse type: a number in [0, 1)."""
    return _number(text, float, lambda v: 0 <= v < 1, "a number in [0, 1)")


def _number(text: str, kind, valid, wanted: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
    if not valid(value):
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
    return value


def command(name: str, help_text: str):
    """Register ``fn(parser) -> run(args) -> int`` as the subcommand ``name``."""

    def register(fn):
        COMMANDS[name] = (help_text, fn)
        return fn

    return register


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chainrule",
        description="chainrule: a readable deep-learning framework on NumPy.",
    )
    parser.add_argument("--version", action="version", version=f"chainrule {chainrule.__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="on an error, print the whole traceback instead of one line")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_arguments) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(run=add_arguments(sub))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; print help when there is none."""
    _load_commands()
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if getattr(args, "run", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt as interrupt:
        if args.traceback:
            raise
        detail = f": {interrupt}" if str(interrupt) else ""
        print(f"chainrule {args.command}: interrupted{detail}", file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        if args.traceback:
            raise
        print(f"chainrule {args.command}: error: {error}", file=sys.stderr)
        return 2


def _load_commands() -> None:
    """Import the modules that define subcommands (they register themselves on import)."""
    import importlib

    for module in ("chainrule.commands", "chainrule.commands_textgen",
                   "chainrule.commands_study", "chainrule.commands_tune",
                   "chainrule.commands_practice"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:
                raise
