"""Settings of the benchmark's own processes: the production settings, plus a URLconf with a floor
view. Keys and the database come from the environment that bench/run.py gives each process."""

from dashboard.settings import *  # noqa: F403

# The floor view lives only here, never in the product's URLs.
ROOT_URLCONF = "bench.urls"

# In-process renders look static files up without a collected manifest (as the test suite does);
# the gunicorn run serves them through the finders too.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
