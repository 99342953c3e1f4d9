#!/usr/bin/env bash
# build-controlplane.sh builds kube-apiserver, kube-controller-manager, etcd
# and kubectl from the Go module proxy (module hack/controlplane) into a cache
# folder keyed by the pinned versions, and prints that folder. A second run
# with the same pins builds nothing.
#
# The folder is what envtest calls KUBEBUILDER_ASSETS. Override its parent with
# PULLSECRETS_CACHE_DIR (default: ${XDG_CACHE_HOME:-$HOME/.cache}/pullsecrets).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mod="${root}/hack/controlplane"
cache="${PULLSECRETS_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/pullsecrets}"

k8s_version="$(cd "${mod}" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
etcd_version="$(cd "${mod}" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
# The pins and this script decide what gets built; hash them so that a change
# to either lands in a new folder instead of reusing stale binaries.
pin_hash="$(cat "${mod}/go.mod" "${mod}/go.sum" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)"
out="${cache}/controlplane/kubernetes-${k8s_version}-etcd-${etcd_version}-${pin_hash}"

binaries=(kube-apiserver kube-controller-manager etcd kubectl)
complete=true
for b in "${binaries[@]}"; do
  [[ -x "${out}/${b}" ]] || complete=false
done
if [[ "${complete}" == true ]]; then
  echo "${out}"
  exit 0
fi

echo "building the local control plane (kubernetes ${k8s_version}, etcd ${etcd_version}) into ${out}" >&2
echo "the first build takes about 10 minutes on 2 cores; later runs reuse it" >&2

# Build into a temporary folder next to the final one and rename it at the end,
# so that an interrupted build never leaves a half-filled cache behind.
mkdir -p "${cache}/controlplane"
tmp="$(mktemp -d "${out}.tmp.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT

minor="${k8s_version#v1.}"
minor="${minor%%.*}"
# Without these the binaries report v0.0.0-master, which kubectl flags as a
# version skew and which hides what we actually test against.
version_ldflags="-X k8s.io/component-base/version.gitVersion=${k8s_version}"
version_ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
version_ldflags+=" -X k8s.io/component-base/version.gitMinor=${minor}"
version_ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
version_ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=${k8s_version}"
version_ldflags+=" -X k8s.io/client-go/pkg/version.gitMajor=1"
version_ldflags+=" -X k8s.io/client-go/pkg/version.gitMinor=${minor}"

build() {
  local name="$1" pkg="$2"
  echo "  go build ${pkg}" >&2
  (cd "${mod}" && go build -trimpath -ldflags "-s -w ${version_ldflags}" -o "${tmp}/${name}" "${pkg}")
}

build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kubectl k8s.io/kubernetes/cmd/kubectl
build etcd go.etcd.io/etcd/server/v3

rm -rf "${out}"
mv "${tmp}" "${out}"
trap - EXIT
echo "${out}"
