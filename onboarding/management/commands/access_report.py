from __future__ import annotations

import csv
import json
from typing import Any

from django.core.management.base import CommandParser

from onboarding.management.commands._base import OnboardingCommand
from onboarding.services.access_report import REPORT_COLUMNS, access_report
from onboarding.services.audit import csv_cell, terminal_text


class Command(OnboardingCommand):
    help = "Who has Production access and how (json: one object per line)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["table", "csv", "json"], default="table")

    def handle(self, *args: Any, **options: Any) -> None:
        fmt = options["format"]
        if fmt == "json":
            # json.dumps writes every control and non-ASCII character as a \u escape: nothing
            # in a name reaches the terminal raw.
            for row in access_report():
                self.stdout.write(json.dumps(row.as_dict()))
            return
        # User, group and integration names are text an administrator sets, and escape codes in
        # them would run on the terminal this prints to (clear it, rewrite lines, retitle it):
        # every value is printed through terminal_text, which shows them escaped.
        rows = [{k: terminal_text(v) for k, v in row.as_dict().items()} for row in access_report()]
        if fmt == "csv":
            writer = csv.DictWriter(self.stdout, fieldnames=REPORT_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
        elif not rows:
            self.stdout.write("Nobody has Production access.")
        else:
            for row in rows:
                scoped = f"  [{row['integration_roles']}]" if row["integration_roles"] else ""
                last = row["last_production_action"] or "no Production action yet"
                self.stdout.write(
                    f"{row['user']:<20} {row['roles'] or '-':<34}{scoped}\n"
                    f"    how: {row['how']}\n    last: {last} {row['last_production_action_at']}"
                )
