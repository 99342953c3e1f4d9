#!/usr/bin/env bash
# generate.sh regenerates everything derived from Go markers: deepcopy
# methods, the CRD, and the controller's RBAC (markers in internal/controller and
# internal/manager); and copies the CRD into the
# Helm chart so that both deployments install the same schema.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

controller_gen="bin/controller-gen"
[[ -x "${controller_gen}" ]] || { echo "run make tools first" >&2; exit 1; }

"${controller_gen}" object paths=./api/...
"${controller_gen}" crd paths=./api/... output:crd:artifacts:config=config/crd/bases
"${controller_gen}" rbac:roleName=pullsecrets-controller paths="{./internal/controller,./internal/manager}" output:rbac:artifacts:config=config/rbac
# Pod deletion for restartPods is a separate, optional role.
"${controller_gen}" rbac:roleName=pullsecrets-controller-restart-pods paths=./internal/controller/podrestart output:rbac:artifacts:config=config/rbac-restart-pods

mkdir -p charts/pullsecrets/crds
cp config/crd/bases/pullsecrets.dev_clusterpullsecrets.yaml charts/pullsecrets/crds/
go run ./hack/chartrbac config/rbac/role.yaml charts/pullsecrets/files
go run ./hack/chartrbac config/rbac-restart-pods/role.yaml charts/pullsecrets/files restart-pods-
# Pods mode's MutatingAdmissionPolicy has no namespace in it: the chart renders
# the same file under its release's names.
cp config/pod-injection/policy.yaml charts/pullsecrets/files/pod-injection.yaml
