from __future__ import annotations

import csv
import json
from typing import Any

from django.core.management.base import CommandParser

from onboarding.management.commands._base import OnboardingCommand
from onboarding.services.access_report import REPORT_COLUMNS, access_report
from onboarding.services.audit import csv_cell


class Command(OnboardingCommand):
    help = "Who has Production access and how (json: one object per line)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["table", "csv", "json"], default="table")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = [row.as_dict() for row in access_report()]
        fmt = options["format"]
        if fmt == "json":
            for row in rows:
                self.stdout.write(json.dumps(row))
        elif fmt == "csv":
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
