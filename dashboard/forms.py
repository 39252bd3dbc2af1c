"""Dashboard forms. The package form is the lead's way to enter an onboarding package.

Secrets are write-only: the client secret and the password are PasswordInputs that never render
a value back, and the paste box never renders its text back (it holds the same secrets). When a
version exists, a field left blank keeps its current value; the form says "set" / "not set" for
secrets and shows the client ID and user name masked.

The "paste from onboarding e-mail" box is read on the server when the form is saved: values found
in it fill the fields the lead left EMPTY, before validation, and `taken_from_paste` lists them so
the page can say so. Typed values always win. There is no separate "fill from paste" round trip,
because that would have to send the pasted secrets back to the browser in the page; instead
static/js/paste.js fills the inputs in the browser the moment the lead pastes, so they see the
result, and the server-side merge makes the form work the same without JavaScript.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.http import QueryDict
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from onboarding.crypto import DecryptionError
from onboarding.models import Environment, PackageVersion, ResponseFormat
from onboarding.services.access import visible_namesake
from onboarding.services.packages import (
    TEXT_MAX,
    UNREADABLE,
    PackageData,
    integration_name_refusal,
    integration_names_taken,
    integration_slug,
    mask,
    package_rebase,
    package_validate,
)
from onboarding.services.paste import MAX_PASTE_CHARS, PASTED_FIELDS, PasteError, paste_parse

NAME_TAKEN = ("An integration with this name already exists: open it from the overview to edit "
              "its packages.")
# Every POST field that may hold a credential: hidden from Django's error reports.
SENSITIVE_FIELDS = ("client_id", "client_secret", "username", "password", "paste",
                    "confirm_password")


class SecretTextarea(forms.Textarea):
    """A textarea that never renders the submitted text back into the page."""

    def format_value(self, value: Any) -> None:
        return None


class SecretInput(forms.PasswordInput):
    def __init__(self) -> None:
        super().__init__(render_value=False,
                         attrs={"autocomplete": "new-password", "spellcheck": "false"})


def _current(version: PackageVersion | None, name: str) -> tuple[str | None, bool]:
    """(value, readable) of a version's field; (None, True) when there is no version."""
    if version is None:
        return None, True
    try:
        return getattr(version, name), True
    except DecryptionError:
        return None, False


def _merge_paste(data: QueryDict) -> tuple[QueryDict, list[str], str | None, str | None]:
    """Fill empty fields of a submitted form from its paste box.

    Returns the new data, the names filled, a PasteError message and the environment the pasted
    command was for (guessed from its host)."""
    text = data.get("paste") or ""
    if not text.strip():
        return data, [], None, None
    try:
        pasted = paste_parse(text=text)
    except PasteError as exc:
        return data, [], str(exc), None
    merged = data.copy()
    taken = []
    for name, value in pasted.values().items():
        if name in PASTED_FIELDS and not (merged.get(name) or "").strip():
            merged[name] = value
            taken.append(name)
    return merged, taken, None, pasted.environment


def rebase_form(form: forms.BaseForm, current: PackageVersion | None) -> str:
    """After a save refused as stale: the page now describes `current`, so the next Save,
    made after looking at it, is based on it (else it would be refused again and again), and
    the configuration fields show the newer version's values except where the user edited
    them (`package_rebase`). Returns the refusal to show. For both package forms, the
    dashboard's and the admin's."""
    rebase = package_rebase(current=current, based_on=form.cleaned_data.get("base_version"),
                            posted=form.cleaned_data)
    form.data = form.data.copy()
    form.data["base_version"] = str(current.number if current is not None else 0)
    for name, value in rebase.shown.items():
        form.data[name] = "" if value is None else str(value)
    return rebase.refusal


class PackageForm(forms.Form):
    paste = forms.CharField(
        label="The cURL command or the Postman environment", required=False, strip=False,
        max_length=MAX_PASTE_CHARS, widget=SecretTextarea(attrs={"rows": 5, "spellcheck": "false",
                                     "data-paste-status": "paste-status"}),
        help_text="Paste the cURL example (curl -X POST … -d 'grant_type=password&client_id=…'), "
                  "the exported Postman environment file, or the \"Client ID: …\" lines of the "
                  "e-mail. It fills the fields you leave empty; it is never stored or shown again.",
    )
    client_id = forms.CharField(label="Client ID", required=False, max_length=TEXT_MAX["client_id"],
                                widget=forms.TextInput(attrs={"autocomplete": "off",
                                                              "spellcheck": "false"}))
    client_secret = forms.CharField(label="Client secret", required=False, strip=False,
                                    max_length=TEXT_MAX["client_secret"], widget=SecretInput())
    username = forms.CharField(label="User name (e-mail)", required=False,
                               max_length=TEXT_MAX["username"],
                               widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    password = forms.CharField(label="Password", required=False, strip=False,
                               max_length=TEXT_MAX["password"], widget=SecretInput())
    company_id = forms.IntegerField(
        label="Company ID", required=False,
        error_messages={"invalid": "The company ID is a positive whole number."},
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
        help_text="The company's entity id (a number), if the package names one.",
    )
    location_id = forms.CharField(label="Location ID", required=False, max_length=64)
    response_format = forms.ChoiceField(label="Preferred response format",
                                        choices=ResponseFormat.choices,
                                        initial=ResponseFormat.JSON)
    notes = forms.CharField(label="Notes", required=False, max_length=TEXT_MAX["notes"],
                            widget=forms.Textarea(attrs={"rows": 3}))
    # The version the configuration fields were filled from (0: none yet), so saving over a
    # version someone stored meanwhile is refused instead of silently undoing it. Optional: a
    # page served before this field existed posts none and is saved as before.
    base_version = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    confirm_password = forms.CharField(
        label="Your Aisle Keys password", required=False, strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "current-password"}),
        help_text="Production changes ask for your password again every few minutes.",
    )

    def __init__(self, data: QueryDict | None = None, *, current: PackageVersion | None = None,
                 needs_stepup: bool = False, **kwargs: Any) -> None:
        self.current = current
        self.taken_from_paste: list[str] = []
        self.paste_error: str | None = None
        self.pasted_environment: str | None = None
        if data is not None:
            data, self.taken_from_paste, self.paste_error, self.pasted_environment = (
                _merge_paste(data))
        kwargs.setdefault("label_suffix", "")
        super().__init__(data, **kwargs)
        if not needs_stepup:
            del self.fields["confirm_password"]
        self.initial["base_version"] = current.number if current is not None else 0
        if current is not None:
            self._describe_current(current)

    def _describe_current(self, current: PackageVersion) -> None:
        self.initial.update({name: getattr(current, name)
                             for name in ("company_id", "location_id", "response_format", "notes")})
        for name in PackageVersion.CREDENTIAL_FIELDS:
            value, readable = _current(current, name)
            if not readable:
                self.fields[name].help_text = f"The current value {UNREADABLE}: enter it again."
            elif name in PackageVersion.SECRET_FIELDS:
                state, keep = ("set", "keep it") if value is not None else ("not set",
                                                                             "leave it unset")
                self.fields[name].help_text = f"Now {state}. Leave empty to {keep}."
            else:
                # Django renders help text as HTML (|safe): the masked value is escaped here.
                self.fields[name].help_text = format_html("Now {}. Leave empty to keep it.",
                                                          mask(value))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.paste_error:
            self.add_error("paste", self.paste_error)
        if "base_version" in self.errors:
            # A hidden field: its own error would show nowhere. Only an altered page posts
            # something that is no version number; what it was based on is unknown.
            del self.errors["base_version"]
            self.add_error(None, "This form does not say which version it was filled from; "
                           "reload the page and enter your changes again.")
        # Validate even when a field already failed, so every problem shows at once; a field
        # with its own error keeps that one.
        try:
            package_validate(data=self.package_data())
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                if name not in self.errors:
                    self.add_error(name if name in self.fields else None, errors)
        return cleaned

    def package_data(self) -> PackageData:
        """What to store: blanks keep the current version's values (secrets as None)."""
        data = self.cleaned_data
        kept = {}
        for name in ("client_id", "username"):
            value, _ = _current(self.current, name)
            kept[name] = data.get(name) or (value or "")
        return PackageData(
            client_id=kept["client_id"],
            username=kept["username"],
            client_secret=data.get("client_secret") or None,
            password=data.get("password") or None,
            company_id=data.get("company_id"),
            location_id=(data.get("location_id") or "").strip(),
            response_format=data.get("response_format") or ResponseFormat.JSON,
            notes=data.get("notes") or "",
        )


class NewIntegrationForm(PackageForm):
    """A new integration with its first package, in one environment the user may edit."""

    name = forms.CharField(label="Integration name", max_length=120,
                           help_text="The system being connected, e.g. \"Acme POS\".")
    environment = forms.ChoiceField(label="Environment", choices=Environment.choices)

    field_order = ["name", "environment"]
    # A new integration has no version to go stale: clean_name refuses an existing name.
    base_version = None

    def __init__(self, data: QueryDict | None = None, *, environments: list[Environment],
                 user: Any = None, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        # Who is asking: a taken name links to its integration only if they may view it.
        self.user = user
        self.fields["environment"].choices = [(env.value, env.label) for env in environments]
        if "confirm_password" in self.fields:
            self.fields["confirm_password"].help_text = (
                "Needed for Production only: Production changes ask for your password again "
                "every few minutes.")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        refusal = integration_name_refusal(name=name)
        if refusal:
            raise ValidationError(refusal)
        slug = integration_slug(name=name)
        if not slug:
            raise ValidationError("The name needs at least one letter or digit.")
        if integration_names_taken(name=name, slug=slug):
            raise ValidationError(self._name_taken(name=name, slug=slug))
        return name

    def _name_taken(self, *, name: str, slug: str) -> str | SafeString:
        """The refusal of a taken name, with a link to the integration that has it when the user
        may view it; else the plain sentence, which says no more than that the name is taken."""
        namesake = (visible_namesake(user=self.user, name=name, slug=slug)
                    if self.user is not None else None)
        if namesake is None:
            return NAME_TAKEN
        # format_html escapes the name (anyone who may edit can choose it) and the URL.
        return format_html('An integration with this name already exists: open <a href="{}">{}</a>'
                           " to edit its packages.",
                           reverse("dashboard:integration", kwargs={"uuid": namesake.uuid}),
                           namesake.name)


class _UserNameLengthChecked:
    """Django's sign-in forms set the user name's max_length after building the field, so no
    validator enforces it: a longer name went on to authenticate() and django-axes, whose
    varchar(255) column made PostgreSQL fail the request (a 500). Here it is a field error,
    like any other invalid value, and no account can have such a name anyway."""

    fields: dict[str, forms.Field]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["username"]
        if field.max_length:
            field.validators.append(MaxLengthValidator(field.max_length))


class SignInForm(_UserNameLengthChecked, AuthenticationForm):
    pass


class AdminSignInForm(_UserNameLengthChecked, AdminAuthenticationForm):
    pass


class AccountPasswordChangeForm(PasswordChangeForm):
    """Django's password change, with the current password checked through authenticate().

    Django's form asks `user.check_password()`, which neither django-axes nor the audit log
    sees: a signed-in session (a borrowed laptop, a stolen session cookie) could guess the
    password without limit, and a right guess also counts as a fresh step-up. Through
    authenticate() a wrong one counts towards the same lockout as a sign-in or a step-up, and
    is audited as a failed password confirmation."""

    error_messages = {
        **PasswordChangeForm.error_messages,
        "password_unchanged": "Choose a new password: this is your current one.",
    }

    def __init__(self, user: Any, data: QueryDict | None = None, *, request: Any) -> None:
        super().__init__(user, data)
        self.request = request

    def clean_old_password(self) -> str:
        old_password = self.cleaned_data["old_password"]
        found = authenticate(self.request, username=self.user.get_username(),
                             password=old_password)
        if found is None or found.pk != self.user.pk:
            raise ValidationError(self.error_messages["password_incorrect"],
                                  code="password_incorrect")
        return old_password

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        old, new = cleaned.get("old_password"), cleaned.get("new_password1")
        if old and new and old == new:
            self.add_error("new_password1", ValidationError(
                self.error_messages["password_unchanged"], code="password_unchanged"))
        return cleaned
