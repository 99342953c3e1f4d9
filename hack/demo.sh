#!/usr/bin/env bash
# demo.sh walks through the pullsecrets story on a local control plane, with
# the real binaries, printing every command the way a user would type it.
# `make demo` builds what it needs first.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
assets="$("${root}/hack/build-controlplane.sh")"
state="$(mktemp -d "${TMPDIR:-/tmp}/pullsecrets-demo.XXXXXX")"
export PATH="${root}/bin:${assets}:${PATH}"
export KUBEBUILDER_ASSETS="${assets}"
export KUBECONFIG="${state}/kubeconfig"

bold=$'\e[1m'; dim=$'\e[2m'; reset=$'\e[0m'
[[ -t 1 ]] || { bold=""; dim=""; reset=""; }

step() { printf '\n%s### %s%s\n' "${bold}" "$*" "${reset}"; }
note() { printf '%s%s%s\n' "${dim}" "$*" "${reset}"; }
# run prints a command as typed at a prompt, then runs it.
run() { printf '%s$ %s%s\n' "${bold}" "$*" "${reset}"; "$@"; }

cleanup() {
  note "stopping the local control plane"
  dev-cluster down --dir "${state}" >/dev/null || true
  rm -rf "${state}"
}
trap cleanup EXIT

step "Start a local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)"
go build -o "${root}/bin/dev-cluster" "${root}/hack/dev-cluster"
dev-cluster up --dir "${state}"
run kubectl version

source "${root}/hack/demo-story.sh"
