# The two front-door commands are `make demo` and `make test`; both install what they need.
SHELL := /bin/bash
# The functions' runtime is python3.13 (infra/lambda_defaults.py); the venv that tests and builds run in is
# the same minor version, so the Python we test is the Python we ship. PYTHON may name the interpreter.
PYTHON_MINOR := 3.13
ifndef PYTHON
PYTHON := $(shell bash scripts/find-python.sh $(PYTHON_MINOR))
endif
VENV := .venv
BIN := $(VENV)/bin
SDK := sdk/python
REQS := requirements/lambda.txt requirements/dev.txt requirements/constraints.txt pyproject.toml $(SDK)/pyproject.toml
PY_STAMP := $(VENV)/.installed-$(PYTHON_MINOR)
NPM_STAMP := node_modules/.installed

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_DEPRECATED := quiet
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install layer-cache chromium test check e2e lint typecheck unit synth demo serve bench fuzz sdk-wheel clean

install: $(PY_STAMP) $(NPM_STAMP) layer-cache

# The Lambda layer's packages (Linux arm64 wheels), fetched once per requirements/lambda.txt into
# .build/layer-<sha256>/ so that synth and tests never need the network. A no-op when already built.
layer-cache: $(PY_STAMP)
	$(BIN)/python -m infra.layer_cache

$(PY_STAMP): $(REQS)
	@test -n "$(PYTHON)" || { echo "Python $(PYTHON_MINOR) is required (the Lambda runtime's version) and was not found: install it (e.g. 'pyenv install $(PYTHON_MINOR)') or run make with PYTHON=/path/to/python$(PYTHON_MINOR)" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(PYTHON_MINOR)".split("."))))' || { echo "$(PYTHON) is not Python $(PYTHON_MINOR) (the Lambda runtime's version)" >&2; exit 1; }
	@if test -x $(BIN)/python && ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(PYTHON_MINOR)".split("."))))'; then echo "$(VENV) is another Python than $(PYTHON_MINOR): rebuilding it"; rm -rf $(VENV); fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3" "setuptools==84.2.1" "wheel==0.48.0"
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt -c requirements/constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	# The SDK (its own package, httpx and pydantic its only dependencies, both pinned above), editable: the
	# CLI, the demo and the tests use it as an app would. No build isolation: nothing is fetched.
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e $(SDK)
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@

# The console's browser tests drive Debian's Chromium (Playwright cannot download its own browser here).
# Installed when missing and possible (root with apt-get); otherwise those tests skip, saying how to install it
# (in CI, where .ci/run sets KR_BROWSER_TESTS=required, they fail instead).
CHROMIUM := /usr/bin/chromium
chromium:
	@if test -x $(CHROMIUM); then :; \
	elif test "$$(id -u)" = 0 && command -v apt-get > /dev/null; then \
		echo "installing Debian's chromium package for the console's browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium > /dev/null; \
	else echo "no $(CHROMIUM), and apt-get cannot run here: the console's browser tests will be skipped (install the chromium package)"; fi

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The SDK is checked on its own, against the oldest Python it supports (its pyproject's mypy settings).
typecheck: $(PY_STAMP)
	$(BIN)/mypy shared functions infra local cli app.py
	$(BIN)/mypy --config-file $(SDK)/pyproject.toml $(SDK)/src

# Test tiers. `make check` is the everyday loop (no local stack); `make e2e` drives the whole system on this
# machine; `make test` (CI) runs every test, then the synth gates.
CHECK_TESTS := tests/unit tests/functions tests/infra
E2E_TESTS := tests/e2e tests/reliability tests/fuzz tests/browser

unit: $(PY_STAMP) chromium
	$(BIN)/python -m pytest -n auto --dist loadfile

check: install lint typecheck
	$(BIN)/python -m pytest -n auto --dist loadfile $(CHECK_TESTS)

e2e: install chromium
	$(BIN)/python -m pytest -n auto --dist loadfile $(E2E_TESTS)

# Synthesizes with the pinned CLI (which also runs the cdk-nag checks: any unacknowledged finding fails it),
# then lints the template; .cfnlintrc says which cfn-lint rule is ignored and why.
synth: install
	rm -rf cdk.out
	npx --no-install cdk synth --quiet --no-notices --no-version-reporting > /dev/null
	$(BIN)/cfn-lint -- cdk.out/*.template.json

test: install lint typecheck unit synth

demo: install
	$(BIN)/kling-relay demo

serve: install
	$(BIN)/kling-relay serve

bench: install
	$(BIN)/python -m bench

# The SDK as a wheel (what an app installs), in .build/sdk/; tests/unit/sdk/test_packaging.py installs one
# into a fresh venv holding only httpx and pydantic.
sdk-wheel: $(PY_STAMP)
	rm -rf .build/sdk
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation --no-index -w .build/sdk $(SDK)
	@ls .build/sdk/*.whl

fuzz: install
	$(BIN)/python -m pytest tests/fuzz -m fuzz --fuzz-examples=2000

clean:
	rm -rf $(VENV) node_modules cdk.out .build .mypy_cache .ruff_cache
