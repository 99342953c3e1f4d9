# demo-lib.sh is what the demos share: a state folder, the control plane on
# the PATH, printing helpers, a kubelet stand-in, and cleanup on exit.
# Sourced by demo.sh and demo-cloud.sh.

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
# run_may_fail is run for commands whose non-zero exit is part of the story.
run_may_fail() { printf '%s$ %s%s\n' "${bold}" "$*" "${reset}"; "$@" || note "(exit status $?)"; }
# wait_for retries a command quietly until it succeeds.
wait_for() { for _ in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done; echo "timed out: $*" >&2; return 1; }

pids=()
cleanup() {
  note "stopping the controller, the kubelet stand-in and the control plane"
  for pid in "${pids[@]}"; do kill "${pid}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  dev-cluster down --dir "${state}" >/dev/null || true
  rm -rf "${state}"
}
trap cleanup EXIT

step "Start a local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)"
go build -o "${root}/bin/dev-cluster" "${root}/hack/dev-cluster"
go build -o "${root}/bin/kubelet-sim" "${root}/hack/kubelet-sim"
dev-cluster up --dir "${state}"
run kubectl version
note "There are no nodes: a stand-in kubelet marks Pods Running when their pull secrets"
note "hold a credential for every image, and ErrImagePull/ImagePullBackOff otherwise."
kubelet-sim --kubeconfig "${KUBECONFIG}" >"${state}/kubelet-sim.log" 2>&1 &
pids+=($!)

