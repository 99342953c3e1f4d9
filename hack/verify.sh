#!/usr/bin/env bash
# verify.sh fails when the tree is not what `make generate`, gofmt and
# `go mod tidy` would produce, when vet or the linters complain, or when the
# working tree is dirty (CI checks a clean checkout; locally, commit first).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail=0
step() { echo "==> $*"; }

step "git: clean working tree"
if [[ -n "$(git status --porcelain)" ]]; then
  git status --short
  echo "the working tree is dirty: commit or stash first" >&2
  exit 1
fi

step "gofmt"
unformatted="$(gofmt -l $(git ls-files '*.go'))"
if [[ -n "${unformatted}" ]]; then
  echo "${unformatted}"; echo "run gofmt -w on the files above" >&2; fail=1
fi

step "go vet"
go vet ./... || fail=1
(cd hack/image && go vet ./...) || fail=1

step "golangci-lint"
bin/golangci-lint run ./... || fail=1
(cd hack/image && ../../bin/golangci-lint run ./...) || fail=1

step "actionlint (.github/workflows)"
bin/actionlint -color=false || fail=1

step "go mod tidy"
for mod in . hack/tools hack/controlplane hack/image hack/credproviders hack/krew hack/actionlint; do
  (cd "${mod}" && go mod tidy -diff) || { echo "go.mod in ${mod} is not tidy: run go mod tidy there" >&2; fail=1; }
done

step "generated code and manifests"
hack/generate.sh
if [[ -n "$(git status --porcelain)" ]]; then
  git status --short
  git diff --stat
  echo "generated files are out of date: run make generate and commit" >&2
  fail=1
  git checkout -- . && git clean -fdq
fi

exit "${fail}"
