# Gatehouse: `make run` serves everything on http://127.0.0.1:$(PORT); `make test` runs the suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?=
export PORT
# python, celery and honcho (in the Procfile too) come from the virtualenv.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install run test test-fast test-integration lint browser test-clients bench

# uv installs the hash-checked lock several times faster than pip: the one on PATH, else one
# installed into the virtualenv first from requirements-bootstrap.lock (one wheel, hash-checked).
# UV=pip forces pip for everything.
UV ?= $(shell command -v uv 2>/dev/null)
$(VENV)/.installed: requirements.lock requirements-bootstrap.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@uv="$(UV)"; \
	  if [ -z "$$uv" ]; then \
	    echo "pip install uv (requirements-bootstrap.lock)"; \
	    $(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
	      -r requirements-bootstrap.lock && uv=$(VENV)/bin/uv || uv=pip; \
	  fi; \
	if [ "$$uv" = pip ]; then \
	  echo "$(PY) -m pip install --require-hashes --no-deps -r requirements.lock"; \
	  $(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock; \
	else \
	  echo "uv pip install --require-hashes --no-deps -r requirements.lock"; \
	  "$$uv" pip install --quiet --compile-bytecode --python $(PY) --require-hashes --no-deps -r requirements.lock; \
	fi
	@touch $@

# `gatehouse COMMAND …` (manage.py run by this virtualenv's python) from any directory; the
# README and docs write every command this way. `python manage.py COMMAND` keeps working.
$(VENV)/bin/gatehouse: $(VENV)/.installed Makefile
	@printf '#!/bin/sh\n# manage.py of %s, run by its virtualenv (written by make install).\nexec "%s" "%s" "$$@"\n' \
	  "$(CURDIR)" "$(abspath $(PY))" "$(CURDIR)/manage.py" > $@
	@chmod +x $@

install: $(VENV)/.installed $(VENV)/bin/gatehouse

# Prepare the data dir (generates the secret key on the very first run; settings never write),
# migrate, create the first admin (its password is printed once, on the very first run), then
# start web (`manage.py serve`), worker, beat and the stdio runner from the Procfile. Ctrl-C
# stops them all.
# Snippets, token audience and allowed origins follow the port unless the public URL is set.
run: export GATEHOUSE_PUBLIC_URL ?= http://127.0.0.1:$(PORT)
# The stdio runner on the port after the web process's, for web and runner alike (not from each
# process's own PORT: honcho gives every Procfile line a PORT of its own).
run: export GATEHOUSE_STDIO_RUNNER_URL ?= http://127.0.0.1:$(shell expr $(PORT) + 1)
run: install
	$(PY) manage.py prepare_data_dir
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py bootstrap_admin
	@echo "Gatehouse on http://127.0.0.1:$(PORT)/ (console at /console/, Ctrl-C stops)"
	@echo "Commands: . .venv/bin/activate, then gatehouse help (or .venv/bin/gatehouse help from anywhere)"
	@# --env /dev/null: honcho would read .env (docker compose's) into web/worker/beat only, so
	@# they and manage.py commands would disagree on keys. Configure with the environment.
	exec $(VENV)/bin/honcho start --no-colour --no-prefix --env /dev/null --procfile Procfile

# Headless Chromium from Debian for the browser tests (only installable as root).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null; \
	  else echo "chromium missing: install it (apt-get install chromium) for tests/e2e" >&2; fi; }

# Node clients the tests drive (supergateway), when their lock file exists; again when it changes.
ifneq ($(wildcard tests/clients/package-lock.json),)
test-clients: tests/clients/node_modules/.installed
tests/clients/node_modules/.installed: tests/clients/package-lock.json
	npm ci --prefix tests/clients --no-audit --no-fund
	@touch $@
else
test-clients:
endif

# Test tiers (CONTRIBUTING.md, "Tests"): TIER=fast is everything in the test process (no server,
# interpreter or browser started), TIER=integration the tests marked integration or e2e,
# TIER=backend those of them whose outcome depends on the database, cache and ASGI server (what
# .ci/run's PostgreSQL + Redis pass runs); without TIER, the whole suite. pytest exits 5 when it
# collected nothing; that fails here like any other failure. Only the tiers that start clients or
# Chromium install them.
TIER ?= all
TIER_MARKERS_fast := not integration and not e2e
TIER_MARKERS_integration := integration or e2e
TIER_MARKERS_backend := (integration or e2e) and not own_environment
TIER_MARKERS := $(TIER_MARKERS_$(TIER))
# pytest-xdist workers: one per core for the in-process tier (it is CPU-bound); one more than the
# cores for the tiers that start processes, which spend much of their time waiting on them.
# WORKERS=0 runs everything in the pytest process (for pdb or print debugging).
# Bytecode caching stays on for tests even where the environment turns it off: every worker and
# every server a test starts would otherwise compile the project (and re-rewrite the test
# modules' asserts) from source again.
CORES := $(shell nproc 2>/dev/null || echo 2)
WORKERS ?= $(if $(filter fast,$(TIER)),$(CORES),$(shell expr $(CORES) + 1))
test: install $(if $(filter fast,$(TIER)),,browser test-clients)
	@case "$(TIER)" in all|fast|integration|backend) ;; \
	  *) echo "make test: TIER must be all, fast, integration or backend" >&2; exit 2;; esac
	@env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest -n $(WORKERS) $(if $(TIER_MARKERS),-m "$(TIER_MARKERS)") $(PYTEST_ARGS); status=$$?; \
	  if [ $$status -eq 5 ]; then echo "make test: FAILED, no tests ran" >&2; fi; exit $$status

# The in-process tier: run it first and after every change (about a minute).
test-fast:
	@$(MAKE) --no-print-directory test TIER=fast

# Every test that starts a real process (servers, workers, stdio runners, supergateway, Chromium).
test-integration:
	@$(MAKE) --no-print-directory test TIER=integration

# Style, types (mypy over the apps, as configured in pyproject.toml) and the apps' layering
# contract (import-linter). All three run; any failure fails the target.
lint: install
	@status=0; \
	  echo "ruff check ."; $(VENV)/bin/ruff check . || status=1; \
	  echo "mypy"; $(VENV)/bin/mypy || status=1; \
	  echo "lint-imports"; $(VENV)/bin/lint-imports || status=1; \
	  if [ $$status -ne 0 ]; then echo "make lint: FAILED" >&2; fi; exit $$status

# What Gatehouse adds to each MCP call, against direct, nginx and a bare token-checking proxy
# (bench/gateway/run.py; docs/performance.md). Starts and stops everything it needs; PostgreSQL
# and Redis are used when they answer (BENCH_DATABASE_URL, BENCH_REDIS_URL). BENCH_ARGS=--quick
# for a short run.
BENCH_ARGS ?=
bench: install
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light) >/dev/null; \
	  else echo "nginx missing: install it (apt-get install nginx-light) to bench against it" >&2; fi; }
	$(PY) -m bench.gateway.run $(BENCH_ARGS)
