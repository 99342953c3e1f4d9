# pullsecrets developer entry points. `make help` lists them.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

BIN := $(CURDIR)/bin
# The control plane binaries (etcd, kube-apiserver, kube-controller-manager,
# kubectl), built once from the Go module proxy into a cache folder.
CONTROLPLANE = $(shell hack/build-controlplane.sh)
GO_TEST_FLAGS ?=
TEST_TIMEOUT ?= 45m
BENCH_NAMESPACES ?= 1000
# The controller image (make image, docs/image.md).
IMAGE_REPO ?= ghcr.io/pullsecrets/pullsecrets-controller
IMAGE_VERSION ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' charts/pullsecrets/Chart.yaml)
IMAGE_ARCH ?= amd64
# A folder of static credential provider binaries for /credential-providers/:
# by default ecr-credential-provider, built from the module proxy
# (hack/build-credproviders.sh); set it empty for an image without plugins.
CREDENTIAL_PROVIDERS ?= $(shell hack/build-credproviders.sh)
# Where make release-snapshot writes (replaced).
DIST ?= $(CURDIR)/dist
# Every timestamp in the image: the last commit's time, so a commit always gives the same digest.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-20s %s\n", $$1, $$2}'

##@ Try it

.PHONY: demo
demo: build controlplane ## Start a local control plane and walk through the whole story.
	hack/demo.sh

.PHONY: demo-cloud
demo-cloud: build controlplane ## The cloud story: short-lived ECR-style tokens kept fresh by a credential provider plugin (~5 minutes).
	hack/demo-cloud.sh

.PHONY: dev-cluster
dev-cluster: controlplane ## Start the local control plane in the background; prints the KUBECONFIG.
	go build -o $(BIN)/dev-cluster ./hack/dev-cluster
	KUBEBUILDER_ASSETS="$(CONTROLPLANE)" $(BIN)/dev-cluster up
	@echo "kubectl is in $(CONTROLPLANE); add it and $(BIN) to PATH to use 'kubectl pullsecrets'"

.PHONY: dev-cluster-down
dev-cluster-down: ## Stop the background control plane.
	go build -o $(BIN)/dev-cluster ./hack/dev-cluster
	$(BIN)/dev-cluster down

##@ Build

.PHONY: build
build: ## Build kubectl-pullsecrets and pullsecrets-controller into bin/, stamped with the version (hack/release).
	go build -ldflags "$$(go run ./hack/release ldflags)" -o $(BIN)/ ./cmd/...

.PHONY: version
version: ## Print the version this checkout builds (the chart's appVersion; -snapshot-<commit> unless tagged v<appVersion>).
	@go run ./hack/release version

.PHONY: set-version
set-version: ## Write VERSION=X.Y.Z into the chart (version, appVersion) and config/manager's image tag; commit, then tag vX.Y.Z.
	@test -n "$(VERSION)" || { echo "usage: make set-version VERSION=X.Y.Z" >&2; exit 2; }
	go run ./hack/release set-version $(VERSION)

##@ Release (docs/install.md)

.PHONY: release-snapshot
release-snapshot: tools ## Build everything a release publishes into dist/, without publishing or Docker; prints every artifact with its digest.
	go run ./hack/release snapshot --dist $(DIST)

.PHONY: release-publish
release-publish: ## Publish dist/ (archives, chart, image by digest, signatures, krew PR); without PUBLISH=1 it only says what it would do.
	hack/release/publish.sh $(DIST)

.PHONY: image
image: ## Build the controller image without Docker: OCI layout bin/image/, archive bin/pullsecrets-controller.tar; prints the digest.
	@cd hack/image && go run . --root $(CURDIR) --ref $(IMAGE_REPO):$(IMAGE_VERSION) --version $(IMAGE_VERSION) \
		--revision "$$(git -C $(CURDIR) rev-parse HEAD 2>/dev/null)" --arch $(IMAGE_ARCH) \
		--go-ldflags "$$(cd $(CURDIR) && go run ./hack/release ldflags)" \
		--source-date-epoch $(SOURCE_DATE_EPOCH) --credential-providers "$(CREDENTIAL_PROVIDERS)" \
		--layout $(BIN)/image --tarball $(BIN)/pullsecrets-controller.tar

.PHONY: controlplane
controlplane: ## Build the local control plane binaries (first time: ~10 minutes).
	@hack/build-controlplane.sh >/dev/null

.PHONY: generate
generate: tools ## Regenerate deepcopy code, the CRD and RBAC manifests.
	hack/generate.sh

##@ Test

.PHONY: test
test: controlplane tools ## Run every test, with the race detector, against the local control plane.
	KUBEBUILDER_ASSETS="$(CONTROLPLANE)" go test -race -timeout $(TEST_TIMEOUT) $(GO_TEST_FLAGS) ./...

.PHONY: test-short
test-short: ## Run the unit tests only (no control plane).
	go test -short $(GO_TEST_FLAGS) ./...

.PHONY: mutation
mutation: ## Mutation testing of the planner: every mutant in internal/planner/testdata/mutants.yaml must fail its tests (a few minutes).
	go run ./hack/mutate --catalogue internal/planner/testdata/mutants.yaml

.PHONY: image-verify
image-verify: ## Build the image twice (the second time with an empty Go cache) and check it: non-root, no shell, static, same digest.
	cd hack/image && PULLSECRETS_IMAGE_COLD_CACHE=1 go test -count=1 -timeout 30m -v $(GO_TEST_FLAGS) ./...

.PHONY: bench
bench: build controlplane ## Fleet benchmark of the controller at $(BENCH_NAMESPACES) namespaces (docs/benchmarks.md).
	KUBEBUILDER_ASSETS="$(CONTROLPLANE)" go run ./bench/fleet --namespaces $(BENCH_NAMESPACES) --controller $(BIN)/pullsecrets-controller --out bench/results $(BENCH_FLAGS)

.PHONY: verify
verify: tools ## gofmt, go vet, golangci-lint, generated files and go.mod up to date; fails on a dirty tree.
	hack/verify.sh

.PHONY: tools
tools: ## Build the pinned golangci-lint, controller-gen, helm, actionlint, cyclonedx-gomod, crane and krew's tools into bin/.
	@cd hack/tools && go build -o $(BIN)/golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint
	@cd hack/tools && go build -o $(BIN)/controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen
	@cd hack/tools && go build -o $(BIN)/helm helm.sh/helm/v3/cmd/helm
	@cd hack/actionlint && go build -o $(BIN)/actionlint github.com/rhysd/actionlint/cmd/actionlint
	@cd hack/tools && go build -o $(BIN)/cyclonedx-gomod github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod
	@cd hack/tools && go build -o $(BIN)/crane github.com/google/go-containerregistry/cmd/crane
	@cd hack/krew && go build -o $(BIN)/krew sigs.k8s.io/krew/cmd/krew
	@cd hack/krew && go build -o $(BIN)/validate-krew-manifest sigs.k8s.io/krew/cmd/validate-krew-manifest

.PHONY: clean
clean: ## Remove build output (not the control plane cache).
	rm -rf $(BIN)
