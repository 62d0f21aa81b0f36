# LeadOps: `make demo` runs the main job, `make test` runs every test and check.
# Both set up what they need: the virtualenv, Python packages, redis-server and
# the local Kubernetes control plane binaries.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit integration system venv clean control-plane cluster-up cluster-down \
	node-system node monitoring flux images e2e scan s3-server

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

# SeaweedFS's `weed`, the real S3 server of the artifact-store tests, built like the control
# plane (hack/control-plane/build.sh s3; cached in ~/.cache/leadops/s3; cold: docs/benchmarks.md).
s3-server:
	@hack/control-plane/build.sh s3 >/dev/null

# kubelet, kube-proxy and CoreDNS for the real node, built like the control plane
# (hack/control-plane/build.sh node; cached in ~/.cache/leadops/node).
node: venv control-plane
	@LEADOPS_PYTHON=$(BIN)/python hack/control-plane/build.sh node >/dev/null

# The Prometheus Operator and its config reloader, built like the control plane, and the
# operator's own CRDs from its module (hack/control-plane/build.sh monitoring; ~/.cache/leadops/monitoring).
monitoring:
	@hack/control-plane/build.sh monitoring >/dev/null

# Flux's source-controller, kustomize-controller and helm-controller, built like the control
# plane from one wrapper module, and their CRDs from their modules (hack/control-plane/build.sh
# flux; ~/.cache/leadops/flux; cold: docs/benchmarks.md). tests/e2e/test_flux.py runs them.
flux:
	@hack/control-plane/build.sh flux >/dev/null

# The base, scorer, operator, Redis and pause images, built with mmdebstrap and buildah
# (no Docker, no registry) into ~/.cache/leadops/images as archives the node imports.
images: node-system monitoring
	@hack/images/build.sh >/dev/null

# End-to-end tests on a real node in the local cluster (root: namespaces, cgroups).
e2e: venv node-system control-plane node images flux
	LEADOPS_E2E=1 $(BIN)/pytest -m e2e tests/e2e

# The policy scanner in its own tool environment (its many pins stay out of the project's):
# checkov over the chart's values profiles and the operator's golden children, failures held
# to hack/scan/accepted.yaml (hack/scan/policy.py).
CHECKOV_VERSION := 3.3.30
TOOLS := .venv-tools
CHECKOV := $(TOOLS)/checkov/bin/checkov
CHECKOV_STAMP := $(TOOLS)/checkov/.installed-$(CHECKOV_VERSION)

$(CHECKOV_STAMP):
	rm -rf $(TOOLS)/checkov
	$(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install --quiet --upgrade pip
	$(TOOLS)/checkov/bin/pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	@touch $@

scan: venv control-plane $(CHECKOV_STAMP)
	$(BIN)/python -m hack.scan.policy --checkov $(CHECKOV) \
		--helm "$$($(BIN)/python -c 'from tests.fixtures.control_plane.binaries import find_helm; print(find_helm())')"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

# Includes the end-to-end tests on a real node (tests/e2e), which need the node's programs
# and the images; LEADOPS_E2E=0 make test skips them (and says so) for a quicker local run.
LEADOPS_E2E ?= 1
test: venv node-system control-plane s3-server node images flux lint typecheck scan
	LEADOPS_E2E=$(LEADOPS_E2E) $(BIN)/pytest

# The two halves of `make test`, without lint and typecheck. Unit tests start no services but
# some use redis-server or helm/kubectl (chart rendering), so both need what `test` needs.
unit: venv system control-plane
	$(BIN)/pytest tests/unit

integration: venv system control-plane s3-server
	$(BIN)/pytest tests/integration

# Ends on a real node when `make node images` have been run (as root), else on kwok nodes.
demo: venv system control-plane
	$(BIN)/python -m hack.demo

# A local cluster for humans: eval "$$(make -s cluster-up)" exports KUBECONFIG and PATH.
# REAL_NODE=1: one real node (containerd + kubelet running the images built here, as root)
# instead of kwok nodes; it stays in the foreground, in its own terminal, until Ctrl-C or
# `make cluster-down`, and writes the exports to .cache/cluster/env.
REAL_NODE ?= 0
cluster-up: venv control-plane $(if $(filter 1,$(REAL_NODE)),node-system node images)
	@$(BIN)/python -m tests.fixtures.control_plane up $(if $(filter 1,$(REAL_NODE)),--real-node)

cluster-down: venv
	@$(BIN)/python -m tests.fixtures.control_plane down

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
