#!/usr/bin/env bash
# build-credproviders.sh builds the kubelet credential provider plugins that
# the tests run (today ecr-credential-provider from k8s.io/cloud-provider-aws)
# from the Go module proxy (module hack/credproviders) into a cache folder
# keyed by the pinned versions, and prints that folder. A second run with the
# same pins builds nothing.
#
# The folder is a plugin bin directory, as the kubelet's --image-credential-
# provider-bin-dir. Override its parent with PULLSECRETS_CACHE_DIR (default:
# ${XDG_CACHE_HOME:-$HOME/.cache}/pullsecrets).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mod="${root}/hack/credproviders"
cache="${PULLSECRETS_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/pullsecrets}"

aws_version="$(cd "${mod}" && go list -m -f '{{.Version}}' k8s.io/cloud-provider-aws)"
# The pins and this script decide what gets built; hash them so that a change
# to either lands in a new folder instead of reusing stale binaries.
pin_hash="$(cat "${mod}/go.mod" "${mod}/go.sum" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)"
# One folder per target platform: GOOS/GOARCH pick it (the release image
# needs the plugin for linux/amd64 and linux/arm64).
target="$(go env GOOS)-$(go env GOARCH)"
out="${cache}/credproviders/cloud-provider-aws-${aws_version}-${target}-${pin_hash}"

binaries=(ecr-credential-provider)
complete=true
for b in "${binaries[@]}"; do
  [[ -x "${out}/${b}" ]] || complete=false
done
if [[ "${complete}" == true ]]; then
  echo "${out}"
  exit 0
fi

echo "building the credential provider plugins (cloud-provider-aws ${aws_version}, ${target}) into ${out}" >&2
echo "the first build takes about a minute on 2 cores; later runs reuse it" >&2

# Build into a temporary folder next to the final one and rename it at the end,
# so that an interrupted build never leaves a half-filled cache behind.
mkdir -p "${cache}/credproviders"
tmp="$(mktemp -d "${out}.tmp.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT

build() {
  local name="$1" pkg="$2" ldflags="$3"
  echo "  go build ${pkg}" >&2
  # Static, as the plugin runs in the controller's distroless image.
  (cd "${mod}" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w ${ldflags}" -o "${tmp}/${name}" "${pkg}")
}

# The version flags of upstream's Makefile; --version prints main.gitVersion.
build ecr-credential-provider k8s.io/cloud-provider-aws/cmd/ecr-credential-provider \
  "-X main.gitVersion=${aws_version} -X k8s.io/component-base/version.gitVersion=${aws_version}"

rm -rf "${out}"
mv "${tmp}" "${out}"
trap - EXIT
echo "${out}"
