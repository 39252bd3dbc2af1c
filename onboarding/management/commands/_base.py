"""The base of every command here: what they all do before `handle` runs.

Arguments must be text. A terminal in another encoding (Latin-1 sends "Café" as b"Caf\\xe9")
gives Python bytes that are not UTF-8, which it keeps in sys.argv as lone surrogates; such a
string cannot be encoded for the database, the audit log or the output, and would end in a
UnicodeEncodeError traceback wherever it is first used. Refused here, once for all commands,
as a usage error (exit 2, as argparse's own), before anything is looked up or changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class OnboardingCommand(BaseCommand):
    # Option strings by destination ("by" -> "--by"), so the refusal names what the user typed.
    _labels: dict[str, str]

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # Both manage.py and call_command build the parser through here before `execute`.
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        self._labels = {action.dest: max(action.option_strings, key=len)
                        for action in parser._actions if action.option_strings}
        return parser

    def execute(self, *args: Any, **options: Any) -> Any:
        for name, value in _text_arguments(args, options):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                label = getattr(self, "_labels", {}).get(name, name)
                raise CommandError(f"{label} '{_shown(value)}' is not valid text: check the "
                                   "terminal's encoding (UTF-8 expected).", returncode=2) from None
        return super().execute(*args, **options)


def _text_arguments(args: tuple[Any, ...], options: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(name, value) for every string given, in lists too (nargs); call_command's stdout and
    stderr objects and the like are not text and are skipped."""
    for value in args:
        if isinstance(value, str):
            yield "argument", value
    for name, value in options.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, str):
                yield name, item


def _shown(value: str) -> str:
    """`value` printable whatever the terminal: the bytes it sent as \\x escapes (b"\\xe9" comes
    back as the surrogate U+DCE9), any other surrogate as \\u."""
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")
