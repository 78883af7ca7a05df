# The two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
# uv installs exactly what uv.lock pins (the project, its runtime dependencies and the
# dev extra); it never downloads a Python of its own.
export UV_PYTHON_DOWNLOADS := never
# Bytecode is cached: with PYTHONDONTWRITEBYTECODE set (as on some machines), every
# process (each test's worker, server and command) compiled about 800 modules from
# source at start, 1.8 s of CPU. uv compiles the dependencies when it installs them;
# Python caches the project's own modules on first import.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test lint format setup lock typecheck messages

$(VENV)/.installed: pyproject.toml uv.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(PY) -m pip install --quiet uv==$(UV_VERSION)
	$(UV) sync --quiet --frozen --extra dev --compile-bytecode
	touch $@

# After changing dependencies in pyproject.toml: regenerate uv.lock, commit it.
lock: $(VENV)/.installed
	$(UV) lock
	$(UV) sync --quiet --frozen --extra dev

# The webhook's hot path compiled to C (webhooks/compiled.py): used only while it matches
# its sources; without a C compiler everything runs as Python.
HOTPATH := build/hotpath/SOURCES.sha256
$(HOTPATH): $(VENV)/.installed webhooks/compiled.py webhooks/hotpath.py $(wildcard webhooks/matching/*.py webhooks/matching/*.c)
	$(CHECK_ENV) LIVEADMIN_PURE_PYTHON=1 $(PY) -c "from webhooks.compiled import build; build()" \
		|| echo "warning: the hot path was not compiled; it runs as Python"

setup: $(VENV)/.installed $(HOTPATH)

# Embedded default: SQLite, local-memory cache, no broker, sandbox provider, demo data.
run: export DEBUG ?= 1
run: $(VENV)/.installed $(HOTPATH)
	$(PY) manage.py migrate --no-input
	$(PY) manage.py seed_demo --base-url http://$(HOST):$(PORT)/sandbox
	@echo "LiveAdmin: http://$(HOST):$(PORT)/  (demo users above; password liveadmin-demo)"
	$(PY) manage.py runserver $(HOST):$(PORT)

test: export LIVEADMIN_EXPECT_COMPILED := 1
test: $(VENV)/.installed $(HOTPATH)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MAKE) --no-print-directory typecheck
	$(CHECK_ENV) $(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# mypy with django-stubs and makemigrations load the settings; DEBUG lets them load
# without production secrets (development ones are generated under var/), and the
# embedded SQLite database spares them a database server.
CHECK_ENV := DEBUG=1 DATABASE_URL=
typecheck: $(VENV)/.installed
	$(CHECK_ENV) $(VENV)/bin/mypy

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# After changing translatable text: update locale/*/django.po from the sources, then
# translate the new entries and run it again to compile them (both are committed;
# tests/test_translations.py fails when they fall behind the sources).
MESSAGES_IGNORE := -i ".venv/*" -i "bench/*" -i "tests/*" -i "var/*" -i "staticfiles/*" -i "docs/*"
messages: $(VENV)/.installed
	$(CHECK_ENV) $(PY) manage.py makemessages --no-obsolete --add-location file \
		-l zh_Hans -l ko $(MESSAGES_IGNORE)
	$(CHECK_ENV) $(PY) manage.py compilemessages --ignore ".venv/*"
