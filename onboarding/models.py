"""The Aisle Keys domain: integrations, versioned onboarding packages, checks, promotions,
access grants and the audit log. Single-object rules live here; multi-object work in services."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper
from django.utils import timezone

from onboarding.crypto import EncryptedTextField
from onboarding.iqmetrix import Outcome


class Environment(models.TextChoices):
    SANDBOX = "sandbox", "Sandbox"
    PRODUCTION = "production", "Production"


class ResponseFormat(models.TextChoices):
    JSON = "json", "JSON"
    HAL_JSON = "hal+json", "JSON+HAL"

    @property
    def accept_header(self) -> str:
        return f"application/{self.value}"


class VersionSource(models.TextChoices):
    EDIT = "edit", "Entered in a form"  # the dashboard's or the admin's, first version or later
    COMMAND = "command", "Command line"
    PROMOTION = "promotion", "Promoted from Sandbox"
    ROLLBACK = "rollback", "Rolled back"


class Role(models.TextChoices):
    VIEW = "view", "View"
    CHECK = "check", "Check"
    EDIT = "edit", "Edit"
    REVEAL = "reveal", "Reveal"
    PROMOTE = "promote", "Promote"


class ProductionState(models.TextChoices):
    CREDENTIALS_MISSING = "credentials_missing", "Credentials missing"
    UNVERIFIED = "unverified", "Unverified"
    VERIFIED = "verified", "Verified"


class Integration(models.Model):
    """An external system being connected to iQmetrix."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=120, unique=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="owned_integrations",
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class OnboardingPackage(models.Model):
    """The slot for one integration's credentials in one environment; content lives in versions.

    The row is also the lock that serialises new versions (select_for_update in services).
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="packages")
    environment = models.CharField(max_length=16, choices=Environment.choices)
    current_version = models.ForeignKey(
        "PackageVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
    )
    # Scheduled checks: which worker round claimed this package last, and since when it fails.
    last_scheduled_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    # One check at a time per package: a check claims the package until this moment (its
    # longest possible run), and on finishing keeps it a couple of seconds more, so a second
    # click gets the check just made instead of starting another (services/checks.py).
    check_busy_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "environment"], name="one_package_per_environment"
            ),
        ]
        permissions = [
            ("view_sandbox", "Can view Sandbox packages"),
            ("check_sandbox", "Can run Sandbox connectivity checks"),
            ("edit_sandbox", "Can edit Sandbox packages"),
            ("reveal_sandbox", "Can reveal Sandbox secrets"),
            ("view_production", "Can view Production packages"),
            ("check_production", "Can run Production connectivity checks"),
            ("edit_production", "Can edit Production packages"),
            ("reveal_production", "Can reveal Production secrets"),
            ("promote_production", "Can promote to and roll back Production"),
        ]

    def __str__(self) -> str:
        return f"{self.integration.name} · {self.get_environment_display()}"

    @property
    def env(self) -> Environment:
        return Environment(self.environment)


class PackageVersion(models.Model):
    """One immutable version of an onboarding package: credentials plus configuration."""

    SECRET_FIELDS = ("client_secret", "password")
    CREDENTIAL_FIELDS = ("client_id", "client_secret", "username", "password")
    CONFIG_FIELDS = ("company_id", "location_id", "response_format", "notes")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    package = models.ForeignKey(
        OnboardingPackage, on_delete=models.CASCADE, related_name="versions"
    )
    number = models.PositiveIntegerField()
    client_id = EncryptedTextField("client ID", null=True, blank=True)
    client_secret = EncryptedTextField(null=True, blank=True)
    username = EncryptedTextField("user name", null=True, blank=True)
    password = EncryptedTextField(null=True, blank=True)
    company_id = models.PositiveBigIntegerField("company ID", null=True, blank=True)
    location_id = models.CharField("location ID", max_length=64, blank=True)
    response_format = models.CharField(
        max_length=16, choices=ResponseFormat.choices, default=ResponseFormat.JSON
    )
    notes = models.TextField(blank=True)
    source = models.CharField(
        max_length=16, choices=VersionSource.choices, default=VersionSource.EDIT
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["package", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["package", "number"], name="unique_version_number"),
        ]

    def __str__(self) -> str:
        return f"{self.package} v{self.number}"

    def save(self, *args, **kwargs) -> None:
        # Versions are immutable: a change is a new version (key rotation uses QuerySet.update).
        if not self._state.adding:
            raise ValidationError("Package versions are immutable; store a new version instead.")
        super().save(*args, **kwargs)

    @property
    def has_credentials(self) -> bool:
        """All four credentials are present (the check needs every one of them)."""
        return all(
            self.__dict__.get(name) is not None for name in self.CREDENTIAL_FIELDS
        )


class CheckTrigger(models.TextChoices):
    DASHBOARD = "dashboard", "Dashboard"
    COMMAND = "command", "Command line"
    SCHEDULED = "scheduled", "Scheduled"
    SAVE = "save", "Save and check"


class CheckKind(models.TextChoices):
    PASSWORD = "password", "Token exchange"
    REFRESH = "refresh", "Token refresh"


class ConnectivityCheck(models.Model):
    """One token exchange against one package version. Tokens are kept only while they live."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    package = models.ForeignKey(OnboardingPackage, on_delete=models.CASCADE, related_name="checks")
    version = models.ForeignKey(PackageVersion, on_delete=models.CASCADE, related_name="checks")
    kind = models.CharField(max_length=16, choices=CheckKind.choices, default=CheckKind.PASSWORD)
    trigger = models.CharField(
        max_length=16, choices=CheckTrigger.choices, default=CheckTrigger.DASHBOARD
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=32, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    message = models.TextField()
    expires_at = models.DateTimeField(null=True, blank=True)
    retry_after = models.PositiveIntegerField(null=True, blank=True)
    token_fingerprint = models.CharField(max_length=32, blank=True)
    me = models.JSONField(null=True, blank=True)
    access_token = EncryptedTextField(null=True, blank=True)
    refresh_token = EncryptedTextField(null=True, blank=True)

    class Meta:
        ordering = ["-sent_at", "-id"]
        indexes = [
            models.Index(fields=["package", "-sent_at"], name="check_package_recent"),
            # The few checks that still hold a token (only a package's newest success keeps
            # them): finding them must not read the package's whole history. Queries filter
            # on one of these IS NOT NULL tests, which the planner proves implies the predicate.
            models.Index(fields=["package"], name="check_package_tokens",
                         condition=Q(access_token__isnull=False)
                         | Q(refresh_token__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.package} {self.outcome} at {self.sent_at:%Y-%m-%d %H:%M:%S}"

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.OK


class PromotionKind(models.TextChoices):
    PROMOTION = "promotion", "Promotion"
    ROLLBACK = "rollback", "Rollback"


class Promotion(models.Model):
    """A Sandbox version copied into a new Production version, or a Production rollback."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="promotions"
    )
    kind = models.CharField(max_length=16, choices=PromotionKind.choices)
    source_version = models.ForeignKey(
        PackageVersion, on_delete=models.PROTECT, related_name="+",
        help_text="The Sandbox version promoted, or the older Production version rolled back to.",
    )
    previous_version = models.ForeignKey(
        PackageVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    new_version = models.ForeignKey(PackageVersion, on_delete=models.PROTECT, related_name="+")
    copied_credentials = models.BooleanField(default=False)
    diff = models.JSONField(default=list, help_text="[{field, status}] names only, never values.")
    reason = models.TextField()
    performed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    performed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-performed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.integration} to v{self.new_version.number}"


class AccessGrant(models.Model):
    """A time-bound Production role for one user, on one integration or on all of them."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_grants"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    integration = models.ForeignKey(
        Integration, null=True, blank=True, on_delete=models.CASCADE, related_name="grants",
        help_text="Empty means every integration.",
    )
    valid_until = models.DateTimeField()
    reason = models.TextField()
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    granted_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-granted_at", "-id"]
        indexes = [
            # Every access decision reads a user's live grants (`_live_grants`): unrevoked and
            # not yet ended, while expired and revoked ones pile up over the years.
            models.Index(fields=["user", "valid_until"], name="grant_live_by_user",
                         condition=Q(revoked_at__isnull=True)),
        ]

    def __str__(self) -> str:
        scope = self.integration.name if self.integration_id else "all integrations"
        return f"grant #{self.pk}: {self.role} on {scope}"

    def is_active(self, *, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and self.valid_until > now


class AuditEvent(models.Model):
    """Append-only, HMAC-chained record of a sensitive action. Never holds a secret value.

    Actor and integration are copied as they were (no foreign keys), so later renames or deletes
    neither rewrite history nor break the chain.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    seq = models.BigIntegerField(unique=True, help_text="Position in the chain, from 1.")
    at = models.DateTimeField(default=timezone.now)
    actor_id = models.IntegerField(null=True, blank=True)
    actor_name = models.CharField(max_length=150, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    action = models.CharField(max_length=40, db_index=True)
    integration_uuid = models.UUIDField(null=True, blank=True, db_index=True)
    integration_name = models.CharField(max_length=120, blank=True)
    environment = models.CharField(max_length=16, blank=True)
    target = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict)
    prev_hmac = models.CharField(max_length=64)
    hmac = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["at"], name="audit_at"),
            # The audit page's filters compare names case-insensitively (UPPER(...) = UPPER(%s)
            # on PostgreSQL); with seq the newest-first page reads in index order.
            models.Index(Upper("actor_name"), F("seq"), name="audit_actor_upper"),
            models.Index(Upper("integration_name"), F("seq"), name="audit_integration_upper"),
            # The access report's "last Production action" of each user: a small index of only
            # the events it can return.
            models.Index(fields=["actor_id", "seq"], name="audit_production_actions",
                         condition=Q(environment="production") & ~Q(action="denied")),
        ]
        permissions = [
            ("view_access_report", "Can view who has Production access"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} by {self.actor_name or 'system'}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValidationError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("Audit events are append-only.")


class AuditChainHead(models.Model):
    """A single row locked by every audit write, so the HMAC chain never forks; it also records
    the newest event, so deleting the last events is detected, under its own HMAC (`seal`), so
    rewinding it to an earlier event, or writing a new one, takes the audit key."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_event_id = models.BigIntegerField(default=0)
    last_hmac = models.CharField(max_length=64, blank=True)
    events = models.BigIntegerField(default=0)
    seal = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"audit chain head: {self.events} events"


class PasswordChangeRequired(models.Model):
    """Marks an account whose password was generated (the first admin's one-time password):
    it must choose its own before doing anything else."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="password_change_required"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"password change required for user {self.user_id}"
