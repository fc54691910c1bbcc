# segserve: `make serve` and `make test` are the two commands a new machine needs.
# Both create .venv from uv.lock (Python 3.11, every extra) before they run.

PYTHON ?= python3.11
UV_VERSION ?= 0.13.9
VENV := .venv
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_SYSTEM_CERTS := 1
export UV_PROJECT_ENVIRONMENT := $(VENV)

HOST ?= 127.0.0.1
# Every Kubernetes manifest (kustomization.yaml is kustomize's, not an API object).
K8S_MANIFESTS = $(filter-out %/kustomization.yaml,$(wildcard deploy/k8s/*.yaml deploy/k8s/optional/*.yaml))
PORT ?= 8000

.PHONY: help venv bytecode torch chromium serve test lint typecheck pytest client-wheel-test browser-test format lock bench bench-link bench-small bench-trainers container-test clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	touch $@

# Bytecode, as the image has it (UV_COMPILE_BYTECODE in the Dockerfile). Where
# PYTHONDONTWRITEBYTECODE is set (many shells, CI runners and containers set it),
# Python never caches what it compiles: every process would compile each of the
# ~700 modules a server imports again, which was more than half of a warm start
# (1.2 s instead of 0.55 s). Compiled once per sync here; the project's own
# modules by `make bytecode`, before the targets that time or start servers.
# A few files of some packages are for newer Pythons only (torch's
# testing/_internal/py312_intrinsics.py): they cannot be imported here either,
# so their SyntaxError is reported in one line and not taken as a failure.
COMPILE_PURELIB = $(VENV)/bin/python -m compileall -qq -j 0 \
	$$($(VENV)/bin/python -c "import sysconfig; print(sysconfig.get_path('purelib'))") \
	|| echo "bytecode: some files do not compile with this Python (nor import); left as source"

$(VENV)/.bytecode: $(VENV)/.synced
	@$(COMPILE_PURELIB)
	touch $@

venv: $(VENV)/.synced $(VENV)/.bytecode  ## create the environment from the lockfile

bytecode: venv  ## compile the project's modules (only what changed since the last time)
	@$(VENV)/bin/python -m compileall -q app service client/src

serve: venv bytecode  ## serve the demo dataset (or SEGSERVE_DATA_ROOT) on http://$(HOST):$(PORT), Swagger UI at /docs
	$(VENV)/bin/segserve serve --host $(HOST) --port $(PORT)

test: lint typecheck pytest client-wheel-test  ## ruff, mypy, pytest, then the client wheel alone

lint: venv  ## ruff (lint and format check), hadolint, strict Kubernetes manifest validation
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/kubernetes-validate --strict --quiet $(K8S_MANIFESTS)

typecheck: venv  ## mypy --strict
	$(VENV)/bin/mypy

pytest: venv torch chromium  ## the test suite (the browser tests included when chromium is there)
	$(VENV)/bin/pytest

# The browser tests drive Debian's chromium with playwright (playwright's own
# browser download cannot work offline). As root with apt-get it is installed
# when missing, as CI needs on a fresh machine; elsewhere those tests skip.
chromium:  ## install Debian's chromium for the browser tests when it is missing
	@sh tools/browser/install-chromium.sh

SCREENSHOTS ?= out/browser
browser-test: venv chromium  ## only the browser tests in Chromium; screenshots in $(SCREENSHOTS)
	SEGSERVE_SCREENSHOTS=$(SCREENSHOTS) $(VENV)/bin/pytest tests/app/browser -v

# PyTorch is not in the lockfile: its CUDA-free build is not on the package
# registry. Where a local CPU wheel exists (TORCH_WHEEL), it is added to the
# environment so the PyTorch adapter is tested; elsewhere those tests skip.
TORCH_WHEEL ?= $(firstword $(wildcard /opt/wheels/torch-2.13.0+cpu-cp311-*.whl))
# torchdata's StatefulDataLoader, for the resume tests (pure Python; --no-deps keeps
# the registry's CUDA torch out).
TORCHDATA ?= torchdata==0.11.0
torch: $(VENV)/.torch  ## add the local PyTorch CPU wheel (and torchdata) to .venv when there is one

$(VENV)/.torch: $(VENV)/.synced
	@if [ -n "$(TORCH_WHEEL)" ] && [ -f "$(TORCH_WHEEL)" ]; then \
		$(UV) pip install --quiet --python $(VENV)/bin/python "$(TORCH_WHEEL)"; \
		$(UV) pip install --quiet --python $(VENV)/bin/python --no-deps "$(TORCHDATA)"; \
		$(COMPILE_PURELIB); \
	else \
		echo "torch: no local CPU wheel; the PyTorch adapter's tests will be skipped"; \
	fi
	touch $@

# The trainer's package on its own: the segserve-client wheel in a fresh venv with
# numpy 2.x from the registry (and the local torch CPU wheel with Python 3.11),
# for each interpreter of CLIENT_PYTHONS found here; tests/client/test_wheel.py
# checks what it imports and that it gets the bytes the main environment gets.
CLIENT_PYTHONS ?= python3.11 python3.12 python3.13
CLIENT_DIST := .client-dist
client-wheel-test: venv torch  ## the segserve-client wheel alone in fresh venvs (numpy 2.x)
	rm -rf $(CLIENT_DIST)
	$(UV) build --quiet --package segserve-client --wheel --out-dir $(CLIENT_DIST)
	@set -e; pythons=""; for py in $(CLIENT_PYTHONS); do \
		if ! $$py -c "" >/dev/null 2>&1; then echo "client-wheel-test: no working $$py here, skipped"; continue; fi; \
		env=$(CURDIR)/$(CLIENT_DIST)/venv-$$($$py -c "import sys; print(sys.version.split()[0])"); extra=""; \
		if $$py -c "import sys; sys.exit(sys.version_info[:2] != (3, 11))" && [ -n "$(TORCH_WHEEL)" ]; then extra="$(TORCH_WHEEL)"; fi; \
		$(UV) venv --quiet --python $$(command -v $$py) $$env; \
		$(UV) pip install --quiet --python $$env/bin/python $(CLIENT_DIST)/*.whl "numpy>=2" $$extra; \
		echo "client-wheel-test: $$py venv $${extra:+with torch}"; pythons="$$pythons $$env/bin/python"; \
	done; \
	SEGSERVE_CLIENT_PYTHONS="$$pythons" $(VENV)/bin/pytest -q -p no:cacheprovider tests/client/test_wheel.py

format: venv  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

lock: | $(UV)  ## re-resolve uv.lock after changing pyproject.toml
	$(UV) lock --python $(PYTHON)

clean:  ## remove the environment and tool caches
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache .hypothesis

container-test: venv  ## build the image; run it alone and as 2 replicas behind nginx (podman); kill one mid-epoch
	UV_VERSION=$(UV_VERSION) VENV=$(VENV) bash tools/container/run-tests.sh

.PHONY: container-lint
container-lint:  ## docker-compose.yml syntax check (skipped when docker-compose is not installed)
	@if command -v docker-compose >/dev/null 2>&1; then \
		docker-compose -f docker-compose.yml config -q && echo "docker-compose.yml: ok"; \
	else \
		echo "docker-compose not installed: docker-compose.yml not checked"; \
	fi

# Both install Debian's nginx-light first when nginx is missing (root, apt-get), for
# the phase through nginx; without it that phase reports nginx as not measured.
# The link phase runs the servers in a network namespace shaped with tc (root, iproute2);
# elsewhere it measures loopback only and says why. PyTorch (make torch) for WebDataset.
bench: venv torch bytecode  ## the benchmark against the chapter's pipeline and WebDataset (~20 min): bench/results.md, bench/results.png
	@sh bench/install-nginx.sh
	$(VENV)/bin/python -m bench --preset full --out bench

bench-link: venv torch bytecode  ## only the link phase (emulated 1 and 10 Gbit/s links), merged into bench/results.*
	@sh bench/install-nginx.sh
	$(VENV)/bin/python -m bench --preset full --phases link --out bench

bench-small: venv torch bytecode  ## a two-minute smoke run of the benchmark, written to bench/out/small
	@sh bench/install-nginx.sh
	$(VENV)/bin/python -m bench --preset small --out bench/out/small --work-dir bench/out/small/work

bench-trainers: venv bytecode  ## only the many-trainers phase (~3 min); other phases' results are kept
	$(VENV)/bin/python -m bench --preset full --phases trainers --out bench

bench-recipes: venv bytecode  ## cost per batch of photometric and cat_max_ratio vs a plain batch, merged into bench/results.*
	$(VENV)/bin/python -m bench --preset full --phases recipes --out bench
