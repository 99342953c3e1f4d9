#!/usr/bin/env bash
# demo.sh walks through the pullsecrets story on a local control plane, with
# the real binaries, printing every command the way a user would type it.
# `make demo` builds what it needs first.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/demo-lib.sh"

source "${root}/hack/demo-story.sh"
