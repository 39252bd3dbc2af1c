# Aisle Keys developer tasks (GNU make). `make help` lists them.
#
# Dependencies are installed only from the hash-pinned lock files in requirements/, with
# `pip --require-hashes --no-deps`, so what runs here is exactly what was reviewed. pip itself is
# not upgraded: it is not in the lock files. A stamp file in .venv remembers which lock was
# installed; the install re-runs only when that lock file is newer than its stamp, so a repeated
# `make run` starts straight away. (Packages dropped from a lock stay installed until `make clean`.)

.PHONY: help venv dev env run test lint lock demo serve e2e chromium clean bench wrk

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
BASE_STAMP := $(VENV)/.installed-base.stamp
DEV_STAMP := $(VENV)/.installed-dev.stamp

# Port for run/demo/serve: `make run PORT=9000` wins, then PORT in the environment, then
# PORT= in .env, then 8000. (.env is read when make starts; a .env written by this very run
# has PORT=8000, the same default.)
ENV_FILE_PORT := $(shell sed -n 's/^PORT=\([0-9][0-9]*\).*/\1/p' .env 2>/dev/null | tail -n 1)
PORT ?= $(or $(ENV_FILE_PORT),8000)

PYTEST_ARGS ?=
UV ?= uv
# Extra options for `make lock`, e.g. `make lock UV_ARGS=--upgrade` or
# `make lock UV_ARGS="--upgrade-package django"`. Without them uv keeps the current pins.
UV_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Fails with a clear message unless $(1) is Python >= 3.11.
define require_python_311
	@$(1) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null || { \
	  echo "error: Aisle Keys needs Python >= 3.11, but '$(1)' is: $$($(1) -V 2>&1 || echo 'not found')." >&2; \
	  echo "       Install Python 3.11+ and run e.g. 'make clean && make run PYTHON=python3.11'." >&2; \
	  exit 1; }
endef

help:
	@echo "make run      install, write .env if missing, migrate, create the first admin, runserver on 127.0.0.1:$(PORT)"
	@echo "make demo     same setup, then the simulator + a seeded demo integration + the dashboard"
	@echo "make serve    same setup + collectstatic, then gunicorn on 127.0.0.1:$(PORT)"
	@echo "make test     dev dependencies, then pytest (PYTEST_ARGS='...' to pass options)"
	@echo "make lint     ruff check ."
	@echo "make e2e      browser tests (needs Debian's chromium; installs it when run as root)"
	@echo "make bench    benchmark on throw-away data, writes bench/results.json (needs Debian's wrk)"
	@echo "make lock     regenerate requirements/*.lock with uv (UV_ARGS=--upgrade to update pins)"
	@echo "make env      write a development .env with fresh keys, only if none exists"
	@echo "make venv     create .venv and install requirements/base.lock (make dev: dev.lock)"
	@echo "make clean    remove .venv, staticfiles and caches (keeps db.sqlite3 and .env)"

# --- virtualenv and dependencies -------------------------------------------------------------

$(VPY):
	$(call require_python_311,$(PYTHON))
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "error: '$(PYTHON) -m venv' failed (on Debian: apt-get install python3-venv)." >&2; exit 1; }

# Order-only on the interpreter: recreating .venv removes the stamps anyway.
$(BASE_STAMP): requirements/base.lock | $(VPY)
	$(call require_python_311,$(VPY))
	$(VPY) -m pip install --require-hashes --no-deps -r requirements/base.lock
	@touch $@

$(DEV_STAMP): requirements/dev.lock | $(VPY)
	$(call require_python_311,$(VPY))
	$(VPY) -m pip install --require-hashes --no-deps -r requirements/dev.lock
	@touch $@

venv: $(BASE_STAMP)

dev: $(DEV_STAMP)

# Standard library only, so it needs the interpreter but not the dependencies.
# Never overwrites an existing .env (it may hold the only key to the local database).
env: | $(VPY)
	$(VPY) -m onboarding.devenv

# --- running ---------------------------------------------------------------------------------

run: venv env
	$(VPY) manage.py migrate --noinput
	$(VPY) manage.py create_first_admin
	$(VPY) manage.py runserver 127.0.0.1:$(PORT)

demo: venv env
	$(VPY) manage.py migrate --noinput
	$(VPY) manage.py demo --port $(PORT)

# Production-style server on loopback: WhiteNoise serves the collected static files.
# --timeout 60: a check may wait up to 2 x (connect + read timeout) for iQmetrix, longer than
# gunicorn's default 30 s. No control socket: it would live in $HOME, one per user, not per app.
# migrate too, so a fresh clone does not answer its first request with "no such table".
# DEBUG=false whatever .env says (the development .env has DEBUG=true): this is the production
# server, with production's hashed, cached static files and plain error pages; HTTPS=false, as
# it answers plain HTTP on loopback (production puts a TLS proxy in front).
SERVE = DEBUG=false HTTPS=false
serve: venv env
	$(SERVE) $(VPY) manage.py migrate --noinput
	$(SERVE) $(VPY) manage.py collectstatic --noinput
	$(SERVE) $(VENV)/bin/gunicorn dashboard.wsgi:application --bind 127.0.0.1:$(PORT) \
	  --workers 2 --timeout 60 --no-control-socket --access-logfile -

# --- checks ----------------------------------------------------------------------------------

# tests/settings.py supplies its own keys, so no .env is needed. DATABASE_URL in the
# environment selects the database (.ci/run uses it for PostgreSQL); SQLite otherwise.
test: dev
	$(VPY) -m pytest $(PYTEST_ARGS)

lint: dev
	$(VENV)/bin/ruff check .

# Installs Debian package $(1) when its command is missing and we are root; else says how.
define debian_command
	@command -v $(1) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(1); \
	  else \
	    echo "error: Debian's $(1) is not installed: sudo apt-get install $(1)" >&2; exit 1; \
	  fi; }
endef

# Playwright's own browser download does not work here; the tests launch Debian's chromium
# through executable_path, so make sure it is installed.
chromium:
	$(call debian_command,chromium)

e2e: dev chromium
	$(VPY) -m pytest -m e2e tests/e2e $(PYTEST_ARGS)

# The HTTP part of the benchmark loads gunicorn with Debian's wrk.
wrk:
	$(call debian_command,wrk)

# Seeds its own throw-away SQLite databases, prints a table and writes bench/results.json; with
# DATABASE_URL=postgres://... it uses throw-away databases on that server instead (never the one
# named) and writes bench/results.postgresql.json.
BENCH_ARGS ?=
bench: dev wrk
	$(VPY) -m bench $(BENCH_ARGS)

# --- lock files ------------------------------------------------------------------------------

# Regenerates both lock files from pyproject.toml with uv, for Python 3.11, with hashes; the
# same commands are recorded at the top of each lock file. uv is a standalone tool, not a
# project dependency: install it with `pipx install uv` or `python3 -m pip install --user uv`
# (https://docs.astral.sh/uv/getting-started/installation/). Review and commit the diff.
lock:
	@command -v $(UV) >/dev/null 2>&1 || { \
	  echo "error: '$(UV)' not found. Install uv: 'pipx install uv' or 'python3 -m pip install --user uv'" >&2; \
	  echo "       (https://docs.astral.sh/uv/getting-started/installation/), then run 'make lock' again." >&2; \
	  exit 1; }
	$(UV) pip compile --generate-hashes --python-version 3.11 $(UV_ARGS) pyproject.toml -o requirements/base.lock
	$(UV) pip compile --generate-hashes --python-version 3.11 --extra dev $(UV_ARGS) pyproject.toml -o requirements/dev.lock

# --- cleaning --------------------------------------------------------------------------------

# Deliberately keeps db.sqlite3 and .env: .env holds FIELD_ENCRYPTION_KEYS and AUDIT_HMAC_KEY,
# the only keys that decrypt the stored credentials and verify the audit chain in that database.
# Delete both by hand to start over.
clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache .hypothesis test-results
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
	@echo "kept db.sqlite3 and .env (delete both by hand to start from scratch)"
