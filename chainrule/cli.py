"""The ``chainrule`` command (also ``python -m chainrule``).

Subcommands register themselves in :data:`COMMANDS`: each is a function that adds its arguments
to a parser and returns the function that runs it.
"""

from __future__ import annotations

import argparse
import sys

import chainrule

COMMANDS: dict = {}


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
    return int(args.run(args) or 0)


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
