"""Argument types shared by the commands: a bad value is a usage error (exit 2) that says what
is accepted, never a traceback from whatever would have used it."""

from __future__ import annotations

import argparse


def whole_number(value: str, *, low: int, high: int, what: str, note: str = "") -> int:
    """`value` as an int from `low` to `high`; "must be {what} from {low} to {high}{note}"."""
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise argparse.ArgumentTypeError(f"must be {what} from {low} to {high}{note}")
    return number
