"""Test settings: the production settings module with keys made for this run only.

The keys are set before dashboard.settings is imported, because it refuses to start without
them. DATABASE_URL is left alone, so CI can run the same suite on PostgreSQL; a .env file is
ignored (DJANGO_READ_DOT_ENV=false).
"""

import base64
import os
import secrets

os.environ.update(
    {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": "test1:" + base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "AUDIT_HMAC_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
        "HTTPS": "false",
        # A developer's .env (from `make run`) must not change what the suite tests.
        "DJANGO_READ_DOT_ENV": "false",
    }
)

from dashboard.settings import *  # noqa: F403

# Fast hashing: the suite creates many users; production keeps Django's default.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# The suite serves static files through the finders; nothing is collected.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
