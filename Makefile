# cpaas — the commands README.md documents. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= dev
# make diff, make plan: the commit the working tree's render is compared with.
BASE ?= HEAD
# dev keeps its state in a local folder with passphrase-encrypted secrets; other stacks use
# whatever backend you are logged in to (Pulumi Cloud, S3, ...).
DEV_BACKEND := file://$(CURDIR)/.pulumi-state

.PHONY: help venv test lint typecheck render render-all plan diff authz replicate bench schemas docs snapshots preflight up preview destroy smoke clean

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed ## create .venv with the pinned dependencies

lint: venv ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

typecheck: lint

# The schemas come from $$CPAAS_SCHEMAS, ../shared/schemas or the cache, else they are fetched
# (pinned, sha256-checked); offline without a copy, it stops in one line. Then no schema-dependent
# test may skip. The iRule tests compare with openssl's certificate text, so openssl is required.
# Speed (issue 14): ruff and mypy run beside pytest (mypy with a cold cache takes about 10 s of CPU;
# pyproject.toml skips the Kubernetes API groups cpaas never uses), their output shown after the
# tests; the target fails if either fails.
# Bytecode is written (gitignored) even where PYTHONDONTWRITEBYTECODE is set: without it each
# worker and each Python the tests start compiles the sources, and pytest rewrites the tests, again.
# worksteal: an idle worker takes queued tests from a busy one, so no slow file ends the run alone.
test: venv ## the whole suite: schemas, lint, types, tests (what CI runs)
	@command -v openssl >/dev/null || { echo "make test: openssl is missing; the iRule tests need it: install openssl" >&2; exit 1; }
	@$(PY) -m tools.schemas --if-missing
	@echo "$(VENV)/bin/ruff check . && $(VENV)/bin/mypy   (beside pytest; output after the tests)"
	@lint_out=$$(mktemp) || exit 1; trap 'rm -f "$$lint_out"' EXIT; \
	{ $(VENV)/bin/ruff check . && $(VENV)/bin/mypy; } >"$$lint_out" 2>&1 & lint_pid=$$!; \
	PYTHONDONTWRITEBYTECODE= CPAAS_REQUIRE_SCHEMAS=1 $(PY) -m pytest -n auto --dist worksteal; tests_rc=$$?; \
	wait $$lint_pid; lint_rc=$$?; \
	echo "---- ruff check . && mypy (exit $$lint_rc)"; cat "$$lint_out"; \
	[ $$tests_rc -eq 0 ] && [ $$lint_rc -eq 0 ]

render: venv ## everything STACK would create, offline, validated and policy-checked: make render STACK=prod
	$(PY) -m tools.render --stack $(STACK) --policy

render-all: venv ## render every stack
	@for s in $$(ls Pulumi.*.yaml | sed 's/Pulumi\.\(.*\)\.yaml/\1/'); do $(PY) -m tools.render --stack $$s --policy || exit $$?; done

plan: venv ## the steps `pulumi up` would take from STACK's render at BASE to the working tree: make plan STACK=prod BASE=main
	$(PY) -m tools.plan --stack $(STACK) --base $(BASE)

diff: venv ## what the PR job shows: STACK rendered at BASE and now, diffed: make diff STACK=prod BASE=main
	$(PY) -m tools.prdiff local --stack $(STACK) --base $(BASE)

authz: venv ## who may call which app, and who leaves through the egress gateway: make authz STACK=prod ARGS="--unit onprem-syd"
	$(PY) -m tools.authz --stack $(STACK) $(ARGS)

replicate: venv ## add a unit derived from another: make replicate ARGS="--stack prod --unit onprem-syd --name onprem-mel"
	$(PY) -m tools.replicate $(ARGS)

bench: venv ## render timings at 1, 4 and 16 units and the time checks (exit 1 if one is missed); ARGS="--sizes 1 4"
	$(PY) -m tools.bench $(ARGS)

schemas: venv ## fill ~/.cache/cpaas/schemas from pinned upstream URLs (sha256-checked)
	$(PY) -m tools.schemas

docs: venv ## write the generated docs: docs/config.md from the config models, docs/versions.md's table
	$(PY) -m tools.configdoc
	$(PY) -m tools.versionsdoc

snapshots: venv ## rewrite tests/snapshots/urns-<stack>.txt after an intended URN change (renames need aliases)
	CPAAS_UPDATE_SNAPSHOTS=1 $(PY) -m pytest tests/test_urns.py -q

preflight: ## check the tools `make up` needs
	@STACK=$(STACK) bash tools/preflight.sh

# dev: a local file backend and passphrase secrets unless you set your own. The empty passphrase
# applies only when neither PULUMI_CONFIG_PASSPHRASE nor PULUMI_CONFIG_PASSPHRASE_FILE is set
# (Pulumi reads the variable before the file).
PULUMI_ENV = $(if $(filter dev,$(STACK)),mkdir -p .pulumi-state; \
	export PULUMI_BACKEND_URL=$${PULUMI_BACKEND_URL:-$(DEV_BACKEND)}; \
	[ -n "$${PULUMI_CONFIG_PASSPHRASE+x}$${PULUMI_CONFIG_PASSPHRASE_FILE-}" ] || export PULUMI_CONFIG_PASSPHRASE=;)

# A stack the backend lacks: dev is created; any other stack is created by you (its secrets
# provider is your organisation's choice), and make says how and which secrets to set.
up: venv preflight ## deploy STACK (dev: local k3d, file backend, passphrase secrets)
	@$(PULUMI_ENV) if ! pulumi stack select $(STACK) 2>/dev/null; then \
	  if [ "$(STACK)" = dev ]; then pulumi stack init dev --secrets-provider passphrase; \
	  else $(PY) -m tools.stackfile --stack $(STACK) --new-stack >&2; exit 1; fi; \
	fi
	@# --continue-on-error: one unit's failure does not stop the other units' updates.
	@$(PULUMI_ENV) pulumi up --stack $(STACK) --continue-on-error

preview: venv preflight ## pulumi preview for STACK (logs in to each BIG-IP; see README)
	@$(PULUMI_ENV) pulumi preview --stack $(STACK)

destroy: preflight ## tear STACK down (dev: also deletes the k3d cluster)
	@$(PULUMI_ENV) pulumi destroy --stack $(STACK)

# The e2e job's smoke checks (tools/smoke.py) against your own `make up STACK=dev`: expectations
# from a fresh render, the unit intermediate from the stack's outputs (README "End-to-end deploy
# on pull requests").
smoke: venv ## check the deployed dev unit answers as the render says (after make up STACK=dev)
	@$(PY) -m tools.render --stack $(STACK) --out build/render/$(STACK) --no-validate >/dev/null
	@$(PULUMI_ENV) $(PY) -m tools.smoke --stack $(STACK) --render build/render/$(STACK)

clean: ## remove renders and caches (keeps .venv and .pulumi-state)
	rm -rf build .pytest_cache .ruff_cache .mypy_cache .hypothesis
