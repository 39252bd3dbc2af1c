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

# `python -m bench --sqlite-wal`: an experiment, not the product's settings. SQLite's default
# rollback journal syncs the disk several times per commit; WAL with synchronous=NORMAL syncs at
# checkpoints only, and lets readers and a writer work at the same time.
import os  # noqa: E402

if os.environ.get("BENCH_SQLITE_WAL") == "1" and DATABASES["default"]["ENGINE"].endswith(  # noqa: F405
        "sqlite3"):
    DATABASES["default"]["OPTIONS"]["init_command"] = (  # noqa: F405
        "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL")
