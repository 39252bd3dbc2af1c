"""Key rotation: re-encrypt every encrypted value under the newest key, batch by batch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.apps import apps
from django.db import models, transaction

from onboarding.crypto import DecryptionError, EncryptedTextField, key_id_of, keyring
from onboarding.services.audit import AuditAction, audit_record


def encrypted_fields() -> list[tuple[type[models.Model], list[EncryptedTextField]]]:
    found = []
    for model in apps.get_app_config("onboarding").get_models():
        enc = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if enc:
            found.append((model, enc))
    return found


def _batches(model: type[models.Model], names: list[str], size: int
             ) -> Iterator[list[models.Model]]:
    # Keyset pagination keeps memory flat however many rows there are.
    last = 0
    while True:
        page = model.objects.filter(pk__gt=last).order_by("pk").only("pk", "uuid", *names)
        rows = list(page[:size])
        if not rows:
            return
        yield rows
        last = rows[-1].pk


@dataclass
class KeyReport:
    current_key: str
    by_key: Counter = field(default_factory=Counter)   # values per key id, before rotating
    rotated: int = 0
    unreadable: list[str] = field(default_factory=list)  # "table.column row-uuid", no values

    missing_keys: list[str] = field(default_factory=list)  # key ids in use but not configured

    @property
    def on_old_keys(self) -> int:
        return sum(n for key, n in self.by_key.items() if key != self.current_key)

    @property
    def on_missing_keys(self) -> int:
        return sum(self.by_key[key] for key in self.missing_keys)


def keys_check(*, batch_size: int = 1000) -> KeyReport:
    """Count stored values per key id without decrypting anything, and name the key ids in use
    that FIELD_ENCRYPTION_KEYS no longer holds (rotation cannot move values off those)."""
    ring = keyring()
    report = KeyReport(current_key=ring.current_id)
    for model, enc in encrypted_fields():
        names = [f.attname for f in enc]
        for rows in _batches(model, names, batch_size):
            for row in rows:
                for f in enc:
                    raw = row.__dict__.get(f.attname)
                    if raw is not None:
                        report.by_key[key_id_of(raw) or "unknown"] += 1
    report.missing_keys = sorted(key for key in report.by_key if ring.key_for(key) is None)
    return report


def keys_rotate(*, batch_size: int = 500) -> KeyReport:
    """Re-encrypt values not under the newest key; one transaction per batch, audited."""
    ring = keyring()
    report = KeyReport(current_key=ring.current_id)
    for model, enc in encrypted_fields():
        names = [f.attname for f in enc]
        last = 0
        while True:
            with transaction.atomic():
                # Read the batch under lock: a concurrent write (a check clearing its tokens)
                # waits for this batch, so it is never overwritten with a re-sealed old value.
                rows = list(model.objects.select_for_update().filter(pk__gt=last)
                            .order_by("pk").only("pk", "uuid", *names)[:batch_size])
                for row in rows:
                    updates = {}
                    for f in enc:
                        raw = row.__dict__.get(f.attname)
                        if raw is None:
                            continue
                        key_id = key_id_of(raw) or "unknown"
                        report.by_key[key_id] += 1
                        if key_id == ring.current_id:
                            continue
                        try:
                            updates[f.attname] = f.seal(row, f.open(row, raw))
                        except DecryptionError:
                            place = f"{model._meta.db_table}.{f.column} {row.uuid}"
                            report.unreadable.append(place)
                    if updates:
                        model.objects.filter(pk=row.pk).update(**updates)
                        report.rotated += len(updates)
            if not rows:
                break
            last = rows[-1].pk
    with transaction.atomic():
        audit_record(action=AuditAction.KEY_ROTATION, target=ring.current_id, details={
            "rotated": report.rotated, "unreadable": len(report.unreadable),
            "values_by_key_before": dict(report.by_key),
        })
    return report
