from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from onboarding.management.commands._arguments import whole_number
from onboarding.management.commands._base import OnboardingCommand
from onboarding.services.keys import keys_check, keys_rotate

# Each batch is one transaction holding its rows' plaintexts in memory: a cap keeps both short.
MAX_BATCH = 10_000


def _batch_size(value: str) -> int:
    # 0 would page through nothing and report success with every value still on an old key.
    return whole_number(value, low=1, high=MAX_BATCH, what="a whole number of rows")


class Command(OnboardingCommand):
    help = (
        "Re-encrypt every stored secret under the newest key of FIELD_ENCRYPTION_KEYS; with "
        "--check, only count the values still on older keys."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true",
                            help="count values on older keys; exit 1 if there are any")
        parser.add_argument("--batch-size", type=_batch_size, default=500,
                            help=f"rows per transaction, 1 to {MAX_BATCH:,} (default 500)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["check"]:
            report = keys_check()
            for key_id, count in sorted(report.by_key.items()):
                mark = (" (newest)" if key_id == report.current_key
                        else " (not configured)" if key_id in report.missing_keys else "")
                self.stdout.write(f"{key_id}{mark}: {count} values")
            self.stdout.write(f"{report.on_old_keys} values on older keys.")
            if report.missing_keys:
                # Rotation cannot open these: the key was dropped too early, or a backup from
                # before the last rotation was restored.
                raise CommandError(
                    f"{report.on_missing_keys} values on keys not in FIELD_ENCRYPTION_KEYS: "
                    f"{', '.join(report.missing_keys)}. Nothing can decrypt them without those "
                    "keys: put those keys back (after the newest), restart, then run "
                    "rotate_encryption_keys.", returncode=1)
            if report.on_old_keys:
                raise CommandError("Run rotate_encryption_keys before removing an old key.",
                                   returncode=1)
            return
        report = keys_rotate(batch_size=options["batch_size"])
        self.stdout.write(f"Re-encrypted {report.rotated} values under key {report.current_key}.")
        if report.unreadable:
            for place in report.unreadable:
                self.stderr.write(f"cannot be decrypted with the configured keys: {place}")
            raise CommandError(f"{len(report.unreadable)} values could not be decrypted; "
                               "they were left as they are.", returncode=1)
