# One command surface. `make demo` and `make test` set themselves up on a fresh clone.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= stripe-payments
REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup graphviz test lint demo stack checkout invoke picture reliability bench build deploy clean

setup: $(VENV)/.installed graphviz

$(VENV)/.installed: requirements.txt layers/payments/requirements.txt
	@python313=$$(scripts/find-python3.13) && \
	  { [ -x $(PY) ] && $(PY) -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null || $$python313 -m venv --clear $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

# Graphviz's dot draws the execution pictures; installed where it can be (as root, with apt-get), else they stay DOT.
graphviz:
	@command -v dot >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  echo "Installing Graphviz to draw the execution pictures" && \
	  apt-get update -qq && apt-get install -y -qq graphviz >/dev/null; } || \
	  echo "No Graphviz: execution pictures stay DOT files (apt-get install graphviz, brew install graphviz)"

CHECKOV_VENV := .venv-checkov

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	@python313=$$(scripts/find-python3.13) && \
	  { [ -x $(CHECKOV_VENV)/bin/python ] && $(CHECKOV_VENV)/bin/python -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null || $$python313 -m venv --clear $(CHECKOV_VENV); }
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

# checkov: any failed check fails the build; each skip is in template.yaml with its reason.
lint: setup $(CHECKOV_VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/cfn-lint template.yaml
	AWS_DEFAULT_REGION=$(REGION) $(VENV)/bin/sam validate --lint --template template.yaml
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation --quiet --compact --skip-download

# The browser tests need a Chromium (Debian: apt-get install chromium); without one they are skipped, and said so.
test: lint
	@[ -n "$$CHROMIUM" ] || command -v chromium >/dev/null || \
	  echo "No Chromium: the browser tests (tests/browser) will be skipped (apt-get install chromium)"
	$(PY) -m pytest -rfEs

demo: setup
	$(PY) -m local_runtime.demo $(ARGS)

stack: setup
	$(PY) -m local_runtime.serve $(ARGS)

# The local stack and the example checkout page (web/) in front of it: open the URL it prints.
checkout: setup
	$(PY) -m local_runtime.serve --checkout $(ARGS)

invoke: setup
	@$(PY) -m local_runtime.invoke $(FUNCTION) $(EVENT)

# An execution of the stack `make stack` serves, drawn; ENDPOINT= (empty) and an ARN draw one in AWS.
ENDPOINT ?= http://127.0.0.1:4566
picture: setup
	@[ -n "$(EXECUTION)" ] || { echo "usage: make picture EXECUTION=<execution name or ARN>"; exit 2; }
	$(PY) -m local_runtime.pictures $(EXECUTION) $(if $(ENDPOINT),--endpoint-url $(ENDPOINT))

reliability: setup
	$(PY) -m local_runtime.reliability $(if $(SEED),--seed $(SEED))

bench: setup
	$(PY) -m bench

build: setup
	PATH="$$(dirname $$(scripts/find-python3.13)):$$PATH" $(VENV)/bin/sam build

deploy: build
	$(VENV)/bin/sam deploy --guided

clean:
	rm -rf .aws-sam .pytest_cache .ruff_cache .local
