#!/usr/bin/env bash
# publish.sh publishes what `make release-snapshot` built into DIST, for the
# tag vVERSION: the GitHub release (archives, checksums, SBOMs, install.yaml,
# chart), the chart to an OCI registry, the image by digest with a keyless
# cosign signature of that digest, and the krew manifest as a pull request to
# kubernetes-sigs/krew-index. The release workflow runs it with PUBLISH=1;
# without it, it checks DIST and prints what it would run, so it runs
# anywhere. Needs with PUBLISH=1: gh and cosign on PATH (the workflow
# installs them), bin/helm and bin/crane (make tools), and registry logins.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

dist="${1:-dist}"
publish="${PUBLISH:-}"
image_repo="${IMAGE_REPO:-ghcr.io/pullsecrets/pullsecrets-controller}"
chart_repo="${CHART_REPO:-oci://ghcr.io/pullsecrets/charts}"
krew_index="${KREW_INDEX:-kubernetes-sigs/krew-index}"

die() { echo "publish: $*" >&2; exit 1; }
[[ -f "${dist}/checksums.txt" && -d "${dist}/image" ]] || die "${dist} holds no snapshot: run make release-snapshot"
(cd "${dist}" && sha256sum --quiet -c checksums.txt) || die "${dist}/checksums.txt does not match the files"

version="$(sed -n 's/^  version: v//p' "${dist}/krew/pullsecrets.yaml")"
[[ -n "${version}" ]] || die "no version in ${dist}/krew/pullsecrets.yaml"
case "${version}" in
  *-snapshot-*|*-dirty) [[ -z "${publish}" ]] || die "${version} is a snapshot: only a tagged, clean commit is published" ;;
esac
digest="$(sed -n 's/^\(sha256:[0-9a-f]\{64\}\)$/\1/p' "${dist}/image-digest.txt")"
[[ -n "${digest}" ]] || die "no image digest in ${dist}/image-digest.txt"

# run prints a command, and runs it only with PUBLISH=1.
run() {
  printf '+'; printf ' %q' "$@"; printf '\n'
  if [[ -n "${publish}" ]]; then "$@"; fi
}

files=()
while read -r _ f; do files+=("${dist}/${f}"); done < "${dist}/checksums.txt"
files+=("${dist}/checksums.txt")

# 1. The GitHub release of the tag, with every file checksums.txt lists.
run gh release create "v${version}" --verify-tag --title "v${version}" --notes-file <(sed -n "/^## \[${version}\]/,/^## \[/p" CHANGELOG.md | sed '$d') "${files[@]}"
# 2. The image, its index pushed as built (same digest), then signed by digest.
run bin/crane push "${dist}/image" "${image_repo}:${version}"
run cosign sign --yes "${image_repo}@${digest}"
# 3. The chart, to the OCI registry: oci://.../pullsecrets:${version}.
run bin/helm push "${dist}/pullsecrets-${version}.tgz" "${chart_repo}"
# 4. The krew manifest, as a pull request to the index, as the account of
# KREW_INDEX_TOKEN (the workflow's own token cannot fork another
# organisation's repository). The token reaches gh and git through the
# environment only, never a command line or the log.
as_krew_bot() { GH_TOKEN="${KREW_INDEX_TOKEN:-${GH_TOKEN:-}}" "$@"; }
bot="$(as_krew_bot gh api user -q .login 2>/dev/null || echo KREW_BOT)"
work="$(mktemp -d)"; trap 'rm -rf "${work}"' EXIT
run as_krew_bot gh repo fork "${krew_index}" --clone=false
run as_krew_bot gh auth setup-git
run as_krew_bot gh repo clone "${bot}/krew-index" "${work}/krew-index"
run cp "${dist}/krew/pullsecrets.yaml" "${work}/krew-index/plugins/pullsecrets.yaml"
run git -C "${work}/krew-index" checkout -b "pullsecrets-v${version}"
run git -C "${work}/krew-index" add plugins/pullsecrets.yaml
run git -C "${work}/krew-index" -c user.name="${bot}" -c user.email="${bot}@users.noreply.github.com" commit -m "pullsecrets v${version}"
run as_krew_bot git -C "${work}/krew-index" push -u origin "pullsecrets-v${version}"
run as_krew_bot gh pr create --repo "${krew_index}" --head "${bot}:pullsecrets-v${version}" \
  --title "pullsecrets v${version}" --body "Release v${version} of pullsecrets (https://github.com/pullsecrets/pullsecrets/releases/tag/v${version})."
[[ -n "${publish}" ]] || echo "publish: dry run: set PUBLISH=1 to run the commands above"
