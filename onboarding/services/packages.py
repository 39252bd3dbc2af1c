"""Integrations and their versioned onboarding packages."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils.text import slugify

from onboarding.crypto import DecryptionError
from onboarding.models import (
    Environment,
    Integration,
    OnboardingPackage,
    PackageVersion,
    Promotion,
    ResponseFormat,
    Role,
    VersionSource,
)
from onboarding.services.access import require
from onboarding.services.audit import (
    AuditAction,
    RequestMeta,
    audit_record,
    is_terminal_control,
)
from onboarding.services.fields import field_label, labels

UNREADABLE = "cannot be decrypted with the configured keys"
COMPANY_ID_MAX = 2**63 - 1  # PositiveBigIntegerField
LOCATION_ID_MAX = PackageVersion._meta.get_field("location_id").max_length
# Text the columns would take at any length (they are encrypted or TextFields), kept to what an
# onboarding package can hold, whichever way it comes in (form, admin, `onboard`).
TEXT_MAX = {"client_id": 200, "username": 254, "client_secret": 500, "password": 500,
            "notes": 4000}
NAME_MAX = Integration._meta.get_field("name").max_length
SLUG_MAX = Integration._meta.get_field("slug").max_length


class PackageError(Exception):
    """A package operation that cannot go ahead; the message is one plain sentence."""


class PackageChanged(PackageError):
    """The package got a new version after the form being saved was filled from an older one.

    A PackageError like the others; its own type so a form can move its base to the version it
    now shows, and the next Save, made after looking at that version, goes ahead."""


class IntegrationExists(PackageError):
    """A new integration was asked for under a name an integration already has."""


@dataclass(frozen=True)
class PackageData:
    """What a lead enters. A secret left as None keeps the current version's value."""

    client_id: str
    username: str
    client_secret: str | None = None
    password: str | None = None
    company_id: int | None = None
    location_id: str = ""
    response_format: str = ResponseFormat.JSON
    notes: str = ""

    def __repr__(self) -> str:  # never show secrets in tracebacks or logs
        return f"PackageData(client_id=…, username=…, company_id={self.company_id!r})"


def package_validate(*, data: PackageData) -> None:
    """Raise ValidationError keyed by field, in words a lead understands."""
    errors: dict[str, str] = {}
    if not (data.client_id or "").strip():
        errors["client_id"] = "Enter the client ID from the onboarding package."
    try:
        validate_email((data.username or "").strip())
    except ValidationError:
        errors["username"] = "The user name must be the API user's e-mail address."
    for name in PackageVersion.SECRET_FIELDS:
        value = getattr(data, name)
        if value is not None and value != value.strip():
            errors[name] = "Remove the spaces at the start or end: they would be sent to iQmetrix."
    if data.company_id is not None and data.company_id <= 0:
        errors["company_id"] = "The company ID is a positive whole number."
    elif data.company_id is not None and data.company_id > COMPANY_ID_MAX:
        errors["company_id"] = "The company ID is too large to be an iQmetrix company ID."
    for name, limit in TEXT_MAX.items():
        if name not in errors and len(getattr(data, name) or "") > limit:
            errors[name] = f"The {field_label(name)} can be at most {limit} characters."
    # Column limits are checked here so PostgreSQL never answers with a DataError (a 500).
    if len(data.location_id or "") > LOCATION_ID_MAX:
        errors["location_id"] = f"The location ID can be at most {LOCATION_ID_MAX} characters."
    if data.response_format not in ResponseFormat.values:
        errors["response_format"] = "Choose JSON or JSON+HAL."
    for name in ("client_id", "username", "client_secret", "password", "location_id", "notes"):
        if name not in errors and not _is_text(getattr(data, name)):
            # A lone surrogate: what json.loads makes of a "\\ud800" escape, or os.environ of
            # bytes that are not UTF-8 (`onboard` reads secrets from the environment). It
            # cannot be encrypted or sent, so it is refused here rather than failing later.
            errors[name] = (f"The {field_label(name)} holds characters that are not valid text; "
                            "type it again.")
    if errors:
        raise ValidationError(errors)


def _is_text(value: str | None) -> bool:
    try:
        (value or "").encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def integration_name_refusal(*, name: str) -> str | None:
    """Why `name` cannot name an integration because of the characters it holds; or None.

    Commands print names to terminals, where an ESC sequence would run and an override shows a
    name spelled backwards in every list: the characters `audit.is_terminal_control` names.
    Right-to-left text itself is fine."""
    if any(is_terminal_control(ch) for ch in name):
        return ("The integration name cannot hold control characters (tabs, line breaks, "
                "escape codes) or invisible text-direction overrides.")
    return None


def integration_slug(*, name: str) -> str:
    """The slug a new integration gets from its name ("Acme POS" -> "acme-pos"), or "".

    slugify() keeps ASCII only, so a name in another script ("Кофейня", "קופה ראשית") had no
    slug and was refused as having "no letter or digit". Such a name gets the punycode of its
    Unicode slug, the way browsers spell such domain names ("xn--e1aiboc0b6e"): still ASCII,
    valid in the admin's slug field, and one per name."""
    slug = slugify(name)
    if not slug:
        wide = slugify(name, allow_unicode=True)
        slug = f"xn--{wide.encode('punycode').decode('ascii')}" if wide else ""
    return slug[:SLUG_MAX]


def integration_find(*, name_or_slug: str) -> Integration:
    """The integration so named, else the one with that slug; raises Integration.DoesNotExist.

    Names and slugs are each unique, but one integration's name may be another's slug (the admin
    allowed that before it checked integration_names_taken): the name wins, so a word finds at
    most one integration."""
    try:
        return Integration.objects.get(name=name_or_slug)
    except Integration.DoesNotExist:
        return Integration.objects.get(slug=name_or_slug)


def integration_names_taken(*, name: str, slug: str, exclude_pk: int | None = None
                            ) -> dict[str, str]:
    """Field ("name", "slug") -> why, for each that another integration already answers to.

    Commands name an integration by its name or its slug, so a name must not be another's name
    or slug, nor a slug another's slug or name. Names compare without case, as people read them.
    An empty value is not checked (its own field reports it)."""
    others = Integration.objects.all()
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    taken: dict[str, str] = {}
    if name and others.filter(Q(name__iexact=name) | Q(slug__iexact=name)).exists():
        taken["name"] = ("Another integration already has this name or uses it as its slug; "
                         "commands, which take either, could not tell the two apart.")
    if slug and others.filter(Q(slug__iexact=slug) | Q(name__iexact=slug)).exists():
        taken["slug"] = ("Another integration already has this slug or uses it as its name; "
                         "commands, which take either, could not tell the two apart.")
    return taken


def integration_get_or_create(
    *, name: str, actor: Any = None, meta: RequestMeta | None = None
) -> tuple[Integration, bool]:
    name = name.strip()
    if not name:
        raise PackageError("The integration needs a name.")
    if len(name) > NAME_MAX:
        raise PackageError(f"The integration name can be at most {NAME_MAX} characters.")
    try:
        return integration_find(name_or_slug=name), False
    except Integration.DoesNotExist:
        pass
    refusal = integration_name_refusal(name=name)  # a new name only: older ones still answer
    if refusal:
        raise PackageError(refusal)
    slug = integration_slug(name=name)
    if not slug:
        raise PackageError("The integration name needs at least one letter or digit.")
    # Found neither by name nor slug, but perhaps by another spelling ("store kiosk" for "Store
    # Kiosk"): the same rule as the dashboard's and the admin's forms, so no command makes a
    # near-twin that people and commands could not tell apart.
    taken = integration_names_taken(name=name, slug=slug)
    if taken:
        raise PackageError(taken.get("name")
                           or f"Another integration already uses the short name '{slug}'.")
    try:
        with transaction.atomic():
            integration = Integration.objects.create(name=name, slug=slug, owner=actor)
            audit_record(action=AuditAction.INTEGRATION_CREATE, actor=actor, meta=meta,
                         integration=integration, target=integration.slug)
    except IntegrityError:
        raise PackageError(f"Another integration already uses the short name '{slug}'.") from None
    return integration, True


def integration_delete(*, integration: Integration, actor: Any,
                       meta: RequestMeta | None = None) -> None:
    """Delete an integration with its packages, versions, checks, promotions and grants.

    Versions are PROTECTed so that nothing removes history by accident; this is the one
    deliberate way, for a superuser, and the audit log keeps the record (it stores names).
    """
    if not getattr(actor, "is_superuser", False):
        raise PermissionDenied("Only a superuser may delete an integration.")
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=integration.pk)
        # Package rows before the audit chain head, in the order a save or a check takes them:
        # the other order deadlocks with a check recorded at the same moment.
        packages = OnboardingPackage.objects.filter(integration=integration)
        list(packages.select_for_update().values_list("pk", flat=True))
        versions = PackageVersion.objects.filter(package__integration=integration).count()
        audit_record(action=AuditAction.INTEGRATION_DELETE, actor=actor, meta=meta,
                     integration=integration, target=integration.slug,
                     details={"versions": versions})
        Promotion.objects.filter(integration=integration).delete()
        packages.update(current_version=None)
        integration.delete()


def integration_save(*, integration: Integration, before: dict[str, Any] | None,
                     changed: list[str], actor: Any, meta: RequestMeta | None = None) -> None:
    """Save an integration made or edited field by field (the admin), with its audit event in
    the same transaction. `before` holds the old values (None for a new one); a rename names
    both, since commands find integrations by name or slug."""
    created = before is None
    with transaction.atomic():
        integration.save()
        if not created and not changed:
            return
        details: dict[str, Any] = {"changed": sorted(changed)}
        if not created:
            details["before"] = {name: before[name] for name in ("name", "slug")
                                 if name in changed}
        audit_record(action=AuditAction.INTEGRATION_CREATE if created
                     else AuditAction.INTEGRATION_EDIT,
                     actor=actor, meta=meta, integration=integration, target=integration.slug,
                     details=details)


def package_get_or_create(*, integration: Integration, environment: str) -> OnboardingPackage:
    package, _ = OnboardingPackage.objects.get_or_create(
        integration=integration, environment=Environment(environment)
    )
    return package


def _secret_or_current(current: PackageVersion | None, name: str, value: str | None) -> str | None:
    if value is not None or current is None:
        return value
    try:
        return getattr(current, name)
    except DecryptionError:
        label = PackageVersion._meta.get_field(name).verbose_name
        raise PackageError(
            f"The current {label} {UNREADABLE}; enter it again to save a new version."
        ) from None


def version_create(
    *, package: OnboardingPackage, values: dict[str, Any], actor: Any, source: VersionSource
) -> PackageVersion:
    """Append a version to a package locked by the caller (select_for_update in a transaction).

    Numbers come from the locked row's versions, so concurrent writers get consecutive numbers;
    the unique constraint is the backstop.
    """
    last = package.versions.aggregate(last=Max("number"))["last"] or 0
    version = PackageVersion(package=package, number=last + 1, source=source,
                             created_by=actor if getattr(actor, "pk", None) else None, **values)
    version.save(force_insert=True)
    OnboardingPackage.objects.filter(pk=package.pk).update(current_version=version)
    package.current_version = version
    return version


def _changed_fields(old: PackageVersion | None, new_values: dict[str, Any]) -> list[str]:
    if old is None:
        return sorted(name for name, value in new_values.items() if value not in (None, ""))
    # An unreadable value before (UNKNOWN) equals nothing: treated as changed.
    return sorted(name for name, value in new_values.items()
                  if version_value(old, name) != value)


@dataclass(frozen=True)
class Stored:
    """What saving a package did: `version` is the package's current version afterwards; `new`
    is False when nothing differed from it, so no version (and no audit event) was made."""

    version: PackageVersion
    new: bool
    changed: list[str]


def package_store(
    *,
    integration: Integration,
    environment: str,
    data: PackageData,
    actor: Any = None,
    meta: RequestMeta | None = None,
    source: VersionSource = VersionSource.EDIT,
    based_on: int | None = None,
) -> Stored:
    """Validate and store a new version of one environment's package, audited in the same
    transaction. `actor=None` is the trusted operator of a management command.

    Saving what the current version already holds stores nothing: a second click on Save, or
    `onboard` run twice with the same values, must not fill the history (and the promotion
    and rollback choices) with identical versions.

    `based_on` is the number of the version a form was filled from (0: there was none). A form
    posts its configuration back as it was shown, so saving it over a newer version would
    silently undo that version's changes: it raises PackageChanged instead. None skips the
    check, for callers that state every value outright (`onboard`) rather than edit a copy."""
    environment = Environment(environment)
    if actor is not None:
        require(user=actor, action=Role.EDIT, environment=environment, integration=integration)
    package_validate(data=data)
    with transaction.atomic():
        package = package_get_or_create(integration=integration, environment=environment)
        package = OnboardingPackage.objects.select_for_update().get(pk=package.pk)
        current = package.current_version
        values = {f.name: getattr(data, f.name) for f in fields(PackageData)}
        values["client_id"] = values["client_id"].strip()
        values["username"] = values["username"].strip()
        for name in PackageVersion.SECRET_FIELDS:
            values[name] = _secret_or_current(current, name, values[name])
        changed = _changed_fields(current, values)
        if current is not None and not changed:
            # Checked before staleness: a second click on Save posts the same form again, now
            # based on a version older than the one its first click made. It asks for nothing
            # the current version lacks, so it is not refused as someone else's change.
            return Stored(version=current, new=False, changed=[])
        refusal = package_changed_since(current=current, based_on=based_on)
        if refusal:
            raise PackageChanged(refusal)
        version = version_create(package=package, values=values, actor=actor, source=source)
        audit_record(
            action=AuditAction.PACKAGE_CREATE if current is None else AuditAction.PACKAGE_EDIT,
            actor=actor, meta=meta, integration=integration, environment=environment,
            target=f"v{version.number}",
            details={"version": version.number, "changed": changed, "source": str(source)},
        )
    return Stored(version=version, new=True, changed=changed)


def package_changed_since(*, current: PackageVersion | None, based_on: int | None
                          ) -> str | None:
    """The sentence refusing a save based on another version than `current`, or None when it
    is based on `current` or on nothing in particular (`based_on` None)."""
    if based_on is None or based_on == (current.number if current else 0):
        return None
    if current is None:  # only if the versions went away with their integration
        return "This package has no version any more; review it and save again."
    return (f"Someone saved version {current.number} since you opened this form; review their "
            "changes and save again.")


@dataclass(frozen=True)
class Rebase:
    """How a form refused as stale is shown again (`package_rebase`)."""

    refusal: str  # names who saved which fields, never a value
    shown: dict[str, Any]  # configuration values for the form: theirs, except where you edited


def package_rebase(*, current: PackageVersion | None, based_on: int | None,
                   posted: dict[str, Any]) -> Rebase:
    """A save refused by `package_changed_since`, merged for a second look.

    The form posts every configuration field back as it was shown, so keeping what was posted
    would make the next Save undo the newer version's changes to fields the user never touched.
    Instead, each field the newer version changed shows its value, unless the user edited that
    field too (the user's value is kept and the sentence says so). Credentials are not merged:
    a blank keeps the current version's value anyway, and secrets are never shown."""
    shown = {name: posted.get(name) for name in PackageVersion.CONFIG_FIELDS}
    if current is None:
        return Rebase(refusal=package_changed_since(current=None, based_on=based_on) or "",
                      shown=shown)
    base = (PackageVersion.objects.filter(package_id=current.package_id, number=based_on).first()
            if based_on else None)
    theirs = _changed_between(base, current)
    edited_too = []
    for name in PackageVersion.CONFIG_FIELDS:
        if name not in theirs or base is None:
            continue  # unchanged by them, or no telling what the user changed: keep the post
        if _same(posted.get(name), getattr(base, name)):
            shown[name] = getattr(current, name)
        elif not _same(posted.get(name), getattr(current, name)):
            edited_too.append(name)
    who = current.created_by.get_username() if current.created_by else "Someone"
    refusal = f"{who} saved version {current.number} since you opened this form"
    if theirs:
        refusal += f", changing {labels(theirs)}"
    refusal += "."
    taken = [name for name in theirs if name in PackageVersion.CONFIG_FIELDS
             and name not in edited_too and base is not None]
    if taken:
        refusal += f" The form now shows their {labels(taken)}."
    if edited_too:
        refusal += (f" You changed the {labels(edited_too)} too: yours is kept, compare it "
                    f"with version {current.number}.")
    return Rebase(refusal=refusal + " Review the form and save again.", shown=shown)


COMPARED_FIELDS = PackageVersion.CREDENTIAL_FIELDS + PackageVersion.CONFIG_FIELDS
UNKNOWN = object()  # a value no configured key decrypts: never the same as anything


def version_value(version: PackageVersion | None, name: str) -> Any:
    """`name` of `version`, decrypted; None without a version; UNKNOWN when no configured key
    opens it (so a comparison says "changed" rather than failing)."""
    if version is None:
        return None
    try:
        return getattr(version, name)
    except DecryptionError:
        return UNKNOWN


def version_values(version: PackageVersion) -> dict[str, Any]:
    """The version's compared fields, each decrypted once."""
    return {name: version_value(version, name) for name in COMPARED_FIELDS}


def _differing(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    # An unreadable value on either side cannot be compared: say it may have changed.
    return [name for name in COMPARED_FIELDS
            if before[name] is UNKNOWN or after[name] is UNKNOWN
            or not _same(before[name], after[name])]


def _changed_between(base: PackageVersion | None, current: PackageVersion) -> list[str]:
    if base is None:
        return []
    return _differing(version_values(base), version_values(current))


def _same(a: Any, b: Any) -> bool:
    # A form posts "" where a version holds None (an empty company ID).
    return (a if a is not None else "") == (b if b is not None else "")


def package_current(*, integration: Integration, environment: str) -> PackageVersion | None:
    package = (
        OnboardingPackage.objects.select_related("current_version")
        .filter(integration=integration, environment=Environment(environment))
        .first()
    )
    return package.current_version if package else None


@dataclass(frozen=True)
class VersionRow:
    """One version as a history lists it: never a secret, the client ID masked, and which
    fields differ by name only."""

    version: PackageVersion
    client_id: str
    current: bool
    earlier: bool  # older than the current version: what a rollback may go back to
    # The fields this version changed from the one listed before it; None for the first.
    changed: tuple[str, ...] | None = None
    # For an earlier version: the fields a rollback to it would change in the current one.
    rollback_changes: tuple[str, ...] = ()

    @property
    def rollback_words(self) -> str:
        """What rolling back to this version would do, in a sentence (names, never values)."""
        if not self.rollback_changes:
            return ("Same values as the current version: rolling back only writes a new "
                    "version number.")
        return f"Rolling back changes the {labels(list(self.rollback_changes))}."


def package_versions(*, integration: Integration, environment: Environment | str
                     ) -> list[VersionRow]:
    """Every version of one environment's package, newest first (two queries), each with the
    fields it changed and, for the ones a rollback may go back to, what that would change."""
    package = (OnboardingPackage.objects.filter(integration=integration,
                                                environment=Environment(environment))
               .select_related("current_version").first())
    if package is None:
        return []
    current = package.current_version
    versions = list(package.versions.select_related("created_by").order_by("-number"))
    values = {version.pk: version_values(version) for version in versions}
    rows = []
    for index, version in enumerate(versions):
        earlier = current is not None and version.number < current.number
        older = versions[index + 1] if index + 1 < len(versions) else None
        rows.append(VersionRow(
            version=version, client_id=masked_value(version=version, name="client_id"),
            current=current is not None and version.pk == current.pk, earlier=earlier,
            changed=(tuple(_differing(values[older.pk], values[version.pk]))
                     if older is not None else None),
            rollback_changes=(tuple(_differing(values[current.pk], values[version.pk]))
                              if earlier and current.pk in values else ()),
        ))
    return rows


def mask(value: str | None) -> str:
    """First and last characters only, e.g. 'ab…yz'; short values are masked entirely."""
    if value is None:
        return "not set"
    if len(value) <= 6:
        return "•" * len(value) if value else "(empty)"
    return f"{value[:2]}…{value[-2:]}"


def masked_value(*, version: PackageVersion | None, name: str) -> str:
    """A stored identifier as the pages show it: masked, "not set", or that it cannot be
    decrypted with the configured keys. Never the value itself."""
    if version is None:
        return mask(None)
    try:
        return mask(getattr(version, name))
    except DecryptionError:
        return UNREADABLE


def credential_shown(*, version: PackageVersion | None, name: str) -> str:
    """A credential as the pages show it, never its value: "set" / "not set" for a secret, a
    masked value for an identifier, or that the configured keys cannot decrypt it (a secret's
    ciphertext alone cannot tell whether it is still of any use)."""
    if name not in PackageVersion.SECRET_FIELDS:
        return masked_value(version=version, name=name)
    if version is None:
        return "not set"
    try:
        value = getattr(version, name)
    except DecryptionError:
        return UNREADABLE
    return "not set" if value is None else "set"


def package_onboard(
    *, integration_name: str, environment: str, data: PackageData, actor: Any = None,
    meta: RequestMeta | None = None, source: VersionSource = VersionSource.COMMAND,
    new_integration: bool = False,
) -> tuple[Stored, bool]:
    """Create the integration if new and store a version, all or nothing; (what was stored,
    whether the integration was created).

    `new_integration=True` (the dashboard's "new integration" form) raises IntegrationExists
    when the name is taken, even by an integration created after the form checked it: its
    package is someone else's to edit, from its own page, not to overwrite from this one."""
    package_validate(data=data)
    with transaction.atomic():
        integration, created = integration_get_or_create(name=integration_name, actor=actor,
                                                         meta=meta)
        if new_integration and not created:
            raise IntegrationExists(f"An integration named '{integration.name}' already "
                                    "exists: open it from the overview to edit its packages.")
        stored = package_store(integration=integration, environment=environment, data=data,
                               actor=actor, meta=meta, source=source)
    return stored, created
