# LeadOps: `make demo` runs the main job, `make test` runs every test and check.
# Both set up what they need: the virtualenv, Python packages, redis-server and
# the local Kubernetes control plane binaries.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit integration system venv clean control-plane cluster-up cluster-down \
	node-system node images e2e

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "leadops: Python 3.11 or newer is required as $(PYTHON)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,dev]'
	@touch $@

system:
	@hack/ensure-system.sh

# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, kubectl and helm,
# built or fetched once into ~/.cache/leadops (hack/control-plane/build.sh; cold: see docs/benchmarks.md).
control-plane: venv
	@LEADOPS_PYTHON=$(BIN)/python hack/control-plane/build.sh >/dev/null

node-system:
	@hack/ensure-system.sh node

# kubelet, kube-proxy and CoreDNS for the real node, built like the control plane
# (hack/control-plane/build.sh node; cached in ~/.cache/leadops/node).
node: venv control-plane
	@LEADOPS_PYTHON=$(BIN)/python hack/control-plane/build.sh node >/dev/null

# The base, scorer, operator, Redis and pause images, built with mmdebstrap and buildah
# (no Docker, no registry) into ~/.cache/leadops/images as archives the node imports.
images: node-system
	@hack/images/build.sh >/dev/null

# End-to-end tests on a real node in the local cluster (root: namespaces, cgroups).
e2e: venv node-system control-plane node images
	LEADOPS_E2E=1 $(BIN)/pytest -m e2e tests/e2e

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

# Includes the end-to-end tests on a real node (tests/e2e), which need the node's programs
# and the images; LEADOPS_E2E=0 make test skips them (and says so) for a quicker local run.
LEADOPS_E2E ?= 1
test: venv node-system control-plane node images lint typecheck
	LEADOPS_E2E=$(LEADOPS_E2E) $(BIN)/pytest

# The two halves of `make test`, without lint and typecheck. Unit tests start no services but
# some use redis-server or helm/kubectl (chart rendering), so both need what `test` needs.
unit: venv system control-plane
	$(BIN)/pytest tests/unit

integration: venv system control-plane
	$(BIN)/pytest tests/integration

demo: venv system control-plane
	$(BIN)/python -m hack.demo

# A local cluster for humans: eval "$$(make -s cluster-up)" exports KUBECONFIG and PATH.
cluster-up: venv control-plane
	@$(BIN)/python -m tests.fixtures.control_plane up

cluster-down: venv
	@$(BIN)/python -m tests.fixtures.control_plane down

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
