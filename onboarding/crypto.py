"""Encryption at rest for credential fields.

AES-256-GCM with a fresh 96-bit nonce per value. The stored text names the key id, so rotation
can tell which values are still on an old key. The associated data binds every ciphertext to its
place (table, column, the row's immutable UUID): a value copied to another row or column fails to
decrypt. Keys come only from ``FIELD_ENCRYPTION_KEYS`` ("id:urlsafe-base64-key", newest first),
never from the database and never derived from ``SECRET_KEY``.

This module knows no models: the field works for any model that has an immutable UUID attribute.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import FieldError
from django.db import models
from django.db.models.query_utils import DeferredAttribute

PREFIX = "v1"
NONCE_BYTES = 12
KEY_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
SETTING = "FIELD_ENCRYPTION_KEYS"


class KeyConfigurationError(ValueError):
    """FIELD_ENCRYPTION_KEYS is missing or malformed. The message never contains a key."""


class DecryptionError(Exception):
    """A stored value that none of the configured keys opens (wrong key, tampered or moved)."""

    def __init__(self, message: str = "cannot be decrypted with the configured keys") -> None:
        super().__init__(message)


@dataclass(frozen=True)
class Keyring:
    """Key ids and AES-256 keys, newest first; the first one encrypts."""

    keys: tuple[tuple[str, bytes], ...]

    @property
    def current_id(self) -> str:
        return self.keys[0][0]

    def key_for(self, key_id: str) -> bytes | None:
        return dict(self.keys).get(key_id)


def parse_keys(text: str | None) -> Keyring:
    """Parse "id:key,id:key" (newest first); raise KeyConfigurationError naming what is wrong."""
    if not text or not text.strip():
        raise KeyConfigurationError(f"{SETTING} is not set.")
    keys: list[tuple[str, bytes]] = []
    for position, item in enumerate(text.split(","), start=1):
        key_id, sep, encoded = item.strip().partition(":")
        if not sep or not KEY_ID_RE.match(key_id):
            raise KeyConfigurationError(
                f"{SETTING}: entry {position} must look like 'keyid:base64key' "
                "(key id of letters, digits, '-' or '_')."
            )
        try:
            raw = base64.urlsafe_b64decode(encoded.strip() + "=" * (-len(encoded.strip()) % 4))
        except (binascii.Error, ValueError):
            raise KeyConfigurationError(
                f"{SETTING}: the key of '{key_id}' is not valid base64."
            ) from None
        if len(raw) != 32:
            raise KeyConfigurationError(
                f"{SETTING}: the key of '{key_id}' must be 32 bytes (AES-256), got {len(raw)}."
            )
        if any(existing == key_id for existing, _ in keys):
            raise KeyConfigurationError(f"{SETTING}: key id '{key_id}' appears twice.")
        keys.append((key_id, raw))
    return Keyring(tuple(keys))


def generate_key_entry(key_id: str) -> str:
    """A fresh "id:key" entry, for set-up and rotation instructions."""
    return f"{key_id}:{base64.urlsafe_b64encode(os.urandom(32)).decode()}"


@lru_cache(maxsize=4)
def _keyring_for(text: str) -> Keyring:
    return parse_keys(text)


def keyring() -> Keyring:
    # Cached per setting value, so tests that override the setting get the new keys at once.
    return _keyring_for(getattr(settings, SETTING, "") or "")


def encrypt(plaintext: str, *, aad: bytes, ring: Keyring | None = None) -> str:
    ring = ring or keyring()
    key_id, key = ring.keys[0]
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), aad)
    return f"{PREFIX}:{key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def key_id_of(token: str) -> str | None:
    parts = token.split(":", 2)
    return parts[1] if len(parts) == 3 and parts[0] == PREFIX else None


def decrypt(token: str, *, aad: bytes, ring: Keyring | None = None) -> str:
    """Open a stored value or raise DecryptionError: never return ciphertext or an empty string."""
    ring = ring or keyring()
    key_id = key_id_of(token)
    key = ring.key_for(key_id) if key_id else None
    if key is None:
        raise DecryptionError()
    try:
        blob = base64.urlsafe_b64decode(token.split(":", 2)[2])
        plain = AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        return plain.decode("utf-8")
    except (InvalidTag, ValueError, binascii.Error):
        raise DecryptionError() from None


class Sealed(str):
    """Ciphertext exactly as read from the database (as opposed to a plaintext just assigned)."""

    __slots__ = ()


class EncryptedAttribute(DeferredAttribute):
    """Decrypts on access, because only here the row (and so its UUID binding) is known."""

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return self
        value = super().__get__(instance, cls)  # loads a deferred column when needed
        if isinstance(value, Sealed):
            return self.field.open(instance, value)
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = value


class EncryptedTextField(models.TextField):
    """A text column stored encrypted and bound to table, column and the row's UUID.

    Only ``None`` is NULL; ``""`` is encrypted like any other value. Only ``isnull`` lookups work:
    the ciphertext is randomised, so any other comparison would silently match nothing.
    """

    descriptor_class = EncryptedAttribute

    def __init__(self, *args: Any, bind_to: str = "uuid", **kwargs: Any) -> None:
        self.bind_to = bind_to
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        if self.bind_to != "uuid":
            kwargs["bind_to"] = self.bind_to
        return name, path, args, kwargs

    def associated_data(self, instance: Any) -> bytes:
        row_id = getattr(instance, self.bind_to, None)
        if row_id is None:
            raise ValueError(f"{type(instance).__name__} needs a {self.bind_to} before encrypting.")
        return f"{self.model._meta.db_table}|{self.column}|{row_id}".encode()

    def seal(self, instance: Any, plaintext: str) -> Sealed:
        return Sealed(encrypt(plaintext, aad=self.associated_data(instance)))

    def open(self, instance: Any, token: str) -> str:
        return decrypt(token, aad=self.associated_data(instance))

    def stored_value(self, instance: Any) -> str | None:
        """The raw ciphertext of this row (None for NULL, a plaintext not yet saved is sealed)."""
        value = instance.__dict__.get(self.attname)
        if value is None or isinstance(value, Sealed):
            return value
        return self.seal(instance, value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Sealed | None:
        return None if value is None else Sealed(value)

    def pre_save(self, model_instance: Any, add: bool) -> Sealed | None:
        return self.stored_value(model_instance)

    def get_prep_value(self, value: Any) -> str | None:
        if value is None or isinstance(value, Sealed):
            return None if value is None else str(value)
        # Reached by QuerySet.update() or a lookup with plaintext: refuse rather than store it.
        raise FieldError(
            f"{self.name} is encrypted: write it through a model instance's save(), "
            "or pass a value sealed with the field's seal()."
        )

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name != "isnull":
            raise FieldError(f"{self.name} is encrypted: only the isnull lookup is supported.")
        return super().get_lookup(lookup_name)

    def get_transform(self, lookup_name: str) -> Any:
        raise FieldError(f"{self.name} is encrypted: it cannot be transformed or compared.")

    def value_to_string(self, obj: Any) -> str:
        # Serialising (dumpdata) must never write plaintext.
        return self.stored_value(obj) or ""

    def formfield(self, **kwargs: Any) -> Any:
        return None  # Never in a ModelForm by accident; forms declare secret fields explicitly.
