# convoy — build, generate, verify and test.
# `make test` is the test command; it builds the envtest binaries from the Go module proxy
# on first use (about 10 minutes on 2 cores) and reuses them afterwards.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

KUBE_VERSION ?= v1.36.3
ETCD_VERSION ?= v3.6.16
CONTROLLER_TOOLS_VERSION ?= v0.23.0

LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GO_TEST_FLAGS ?= -timeout 30m

FLEET_DIR ?= $(CURDIR)/.fleet

export KUBE_VERSION ETCD_VERSION FLEET_DIR

.PHONY: all
all: build

##@ Development

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code, CRDs and RBAC from the Go markers.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...
	$(CONTROLLER_GEN) crd:generateEmbeddedObjectMeta=true paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=manager-role paths=./controllers/... output:rbac:artifacts:config=config/rbac
	go run ./hack/chartgen

.PHONY: fmt
fmt: ## Run gofmt on the tree.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: verify
verify: generate ## Fail when generated files are stale, code is not gofmt'ed or go vet complains.
	@git diff --exit-code -- api config charts || { echo "Generated files are stale: run 'make generate' and commit the result."; exit 1; }
	@test -z "$$(git status --porcelain -- api config charts)" || { git status --porcelain -- api config charts; echo "Generated files are not committed."; exit 1; }
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$unformatted" || { echo "Not gofmt'ed: $$unformatted"; exit 1; }
	go vet ./...

.PHONY: envtest-assets
envtest-assets: ## Build (or reuse) kube-apiserver and etcd for envtest.
	@hack/k8s-binaries.sh kube-apiserver etcd >/dev/null

.PHONY: test
test: ## Run unit and integration tests (real kube-apiserver + etcd via envtest, a real Prometheus for health gates).
	@assets="$${KUBEBUILDER_ASSETS:-$$(hack/k8s-binaries.sh kube-apiserver etcd | tail -n 1)}"; \
	echo "Using envtest binaries from $$assets"; \
	prometheus="$${PROMETHEUS:-$$(hack/prometheus.sh | tail -n 1)}"; \
	echo "Using $$prometheus for the health-gate tests"; \
	PROMETHEUS="$$prometheus" KUBEBUILDER_ASSETS="$$assets" go test $(GO_TEST_FLAGS) ./...

##@ Local fleet (kwokctl: a manager cluster and three service clusters, no Docker)

.PHONY: demo
demo: ## Start the local fleet and convoy, apply the samples, wait, print a per-cluster summary.
	@hack/fleet.sh up

.PHONY: demo-down
demo-down: ## Stop the fleet and convoy started by `make demo` and remove their state.
	@hack/fleet.sh down

.PHONY: e2e
e2e: ## Run the end-to-end suite on the local fleet (starts it when needed; leaves it running).
	@FLEET_SERVICE_CLUSTERS= FLEET_SAMPLES=1 hack/fleet.sh up # the suite needs the default fleet
	go test -tags e2e -count=1 -timeout 20m ./test/e2e/ -ginkgo.v

.PHONY: shutdown-bench
shutdown-bench: ## Scale-in harness: failed requests and time to terminate per PreStop, proxy and lag (docs/graceful-shutdown.md).
	go test -tags shutdownbench -count=1 -timeout 30m -run TestScaleInTable -v ./test/shutdown/

.PHONY: bench
bench: ## Benchmark convoy on a fleet of its own in .bench (CLUSTERS=5 PROJECTS=1000 RATE=10 SKIP= BENCH_KEEP=; docs/performance.md).
	go run ./test/bench

##@ Build and run

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/convoy-dev/convoy/internal/version.Version=$(VERSION)

.PHONY: build
build: ## Build the manager, the drain helper and the CLI (bin/manager, bin/convoy-drain, bin/convoy and bin/kubectl-convoy), stamped with VERSION.
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/manager .
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/convoy-drain ./cmd/convoy-drain
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/convoy ./cmd/convoy
	ln -sf convoy $(LOCALBIN)/kubectl-convoy

.PHONY: image
image: ## Build the manager and convoy-drain images without Docker: OCI layouts in bin/images, digests printed (PUSH=registry/prefix pushes; PLATFORMS=linux/amd64,linux/arm64).
	@VERSION="$(VERSION)" hack/image.sh $(if $(PUSH),--push $(PUSH)) all

.PHONY: run
run: ## Run the manager against the cluster of the current kubeconfig (or KUBECONFIG).
	go run . --metrics-bind-address=127.0.0.1:8443 --health-probe-bind-address=:8081

.PHONY: install
install: ## Install the CRDs into the cluster of the current kubeconfig.
	kubectl apply --server-side -k config/crd

$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $(CONTROLLER_GEN)

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
