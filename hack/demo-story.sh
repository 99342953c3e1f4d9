# demo-story.sh is the story told by demo.sh, sourced by it (it uses its
# step/note/run helpers, $state, $pids and an exported KUBECONFIG).

step "1. A team deploys an app whose image lives in a private registry"
run kubectl create namespace shop
run kubectl -n shop create deployment web --image=registry.example.com/shop/web:1.0
wait_for bash -c "kubectl -n shop get pods -o jsonpath='{.items[*].status.containerStatuses[*].state.waiting.reason}' | grep -q ImagePullBackOff"
run kubectl -n shop get pods
note "ImagePullBackOff: the Pod names no pull secret, and its ServiceAccount has none."

step "2. A team without the controller fixes its own namespace with kubectl pullsecrets"
run kubectl create namespace payments
run kubectl -n payments create deployment api --image=registry.example.com/payments/api:2.3
wait_for bash -c "kubectl -n payments get pods -o jsonpath='{.items[*].status.containerStatuses[*].state.waiting.reason}' | grep -q ImagePullBackOff"
run_may_fail kubectl pullsecrets doctor -n payments
note "The password comes on stdin, never on the command line; the Secret and the"
note "ServiceAccount patch are one idempotent step."
printf '%s$ echo not-a-real-password | kubectl pullsecrets create payments-registry -n payments \\\n    --docker-server=registry.example.com --docker-username=ci-bot --docker-password-stdin --attach default%s\n' "${bold}" "${reset}"
echo not-a-real-password | kubectl pullsecrets create payments-registry -n payments \
  --docker-server=registry.example.com --docker-username=ci-bot --docker-password-stdin --attach default
run_may_fail kubectl pullsecrets doctor -n payments
note "The running Pod keeps the empty list it was created with: only a new Pod gets the"
note "ServiceAccount's secrets. restart deletes the stuck Pods that a new Pod would fix."
run kubectl pullsecrets restart -n payments --dry-run
run kubectl pullsecrets restart -n payments
wait_for bash -c "kubectl -n payments get pods -o jsonpath='{.items[*].status.phase}' | grep -qx Running"
run kubectl -n payments get pods -o custom-columns=POD:.metadata.name,STATUS:.status.phase,PULL_SECRETS:.spec.imagePullSecrets[*].name
run_may_fail kubectl pullsecrets status -A
note "status exits 1 while any namespace has a problem, for use in CI: shop still fails."

step "3. The platform team installs the controller and stores the credential once"
run kubectl apply -f config/crd/bases/pullsecrets.dev_clusterpullsecrets.yaml
run kubectl create namespace pullsecrets-system
run kubectl -n pullsecrets-system create secret docker-registry registry-example-com \
  --docker-server=registry.example.com --docker-username=ci-bot --docker-password=not-a-real-password
pullsecrets-controller --kubeconfig "${KUBECONFIG}" --source-namespaces pullsecrets-system --leader-elect=false \
  --metrics-bind-address 0 --health-probe-bind-address 0 >"${state}/controller.log" 2>&1 &
pids+=($!)
note "(pullsecrets-controller is running in the background; its log: ${state}/controller.log)"

step "4. One ClusterPullSecret: every namespace, every ServiceAccount, and replace Pods that failed"
cat >"${state}/cps.yaml" <<'YAML'
apiVersion: pullsecrets.dev/v1alpha1
kind: ClusterPullSecret
metadata:
  name: registry-example-com
spec:
  source:
    namespace: pullsecrets-system
    name: registry-example-com
  secretName: regcred
  restartPods: OnPullFailure
YAML
run cat "${state}/cps.yaml"
run kubectl apply -f "${state}/cps.yaml"
wait_for kubectl wait clusterpullsecret/registry-example-com --for=condition=Ready --timeout=1s
run kubectl get clusterpullsecrets
run kubectl -n shop get serviceaccount default -o jsonpath='{.imagePullSecrets}{"\n"}'
wait_for bash -c "kubectl -n shop get pods -o jsonpath='{.items[*].status.phase}' | grep -qx Running"
run kubectl -n shop get pods -o custom-columns=POD:.metadata.name,STATUS:.status.phase,PULL_SECRETS:.spec.imagePullSecrets[*].name
note "The controller deleted the Pod stuck on the pull; its ReplicaSet made a new one, which"
note "admission gave the ServiceAccount's secret. No manifest changed."
run kubectl get events -A --field-selector involvedObject.kind=ClusterPullSecret -o custom-columns=REASON:.reason,MESSAGE:.message

step "5. A new namespace is served from the watch, within a second"
run kubectl create namespace billing
wait_for bash -c "kubectl -n billing get serviceaccount default -o jsonpath='{.imagePullSecrets[*].name}' | grep -q regcred"
run kubectl -n billing get secret regcred -o custom-columns=NAME:.metadata.name,TYPE:.type,MANAGED_BY:.metadata.labels.app\\.kubernetes\\.io/managed-by
run kubectl -n billing get serviceaccount default -o jsonpath='{.imagePullSecrets}{"\n"}'

step "6. Rename the secret everywhere: new copies, then attach, then detach the old name"
run kubectl patch clusterpullsecret registry-example-com --type=merge -p '{"spec":{"secretName":"regcred-2026"}}'
wait_for bash -c "kubectl -n shop get serviceaccount default -o jsonpath='{.imagePullSecrets[*].name}' | grep -qx regcred-2026"
run kubectl -n shop get serviceaccount default -o jsonpath='{.imagePullSecrets}{"\n"}'
wait_for bash -c "kubectl get clusterpullsecret registry-example-com -o jsonpath='{.status.secretName}/{.status.pendingRetirement}' | grep -qx regcred-2026/1"
run kubectl get clusterpullsecret registry-example-com -o custom-columns=SECRET:.status.secretName,READY:.status.namespaces.summary,PENDING_RETIREMENT:.status.pendingRetirement
run kubectl get clusterpullsecret registry-example-com -o jsonpath='{.status.retiring}{"\n"}'
run kubectl -n shop get secrets
note "shop's old copy stays while its running Pod lists regcred (a restarted container may pull"
note "again), and the status names what holds it; billing's is gone already."

step "7. Next to a GitOps tool: Pods mode puts the name on the Pods and writes no ServiceAccount"
note "In gitops, Argo CD owns the ServiceAccount and renders its imagePullSecrets (an atomic list:"
note "whoever applies it owns all of it). Any name added to it is reverted at the next sync."
cat >"${state}/gitops-sa.yaml" <<'YAML'
apiVersion: v1
kind: ServiceAccount
metadata:
  name: default
  namespace: gitops
imagePullSecrets:
  - name: app-own
YAML
run kubectl patch clusterpullsecret registry-example-com --type=merge -p '{"spec":{"namespaces":{"exclude":["gitops"]}}}'
note "(The ServiceAccounts-mode ClusterPullSecret of step 4 leaves gitops to Pods mode.)"
run kubectl create namespace gitops
run kubectl apply --server-side --field-manager=argocd-controller --force-conflicts -f "${state}/gitops-sa.yaml"
run kubectl apply -f config/pod-injection/policy.yaml
note "The MutatingAdmissionPolicy that pullsecrets ships (config/pod-injection): the API server"
note "itself adds the name to new Pods; no webhook, nothing to be down."
cat >"${state}/cps-pods.yaml" <<'YAML'
apiVersion: pullsecrets.dev/v1alpha1
kind: ClusterPullSecret
metadata:
  name: gitops-registry
spec:
  source:
    namespace: pullsecrets-system
    name: registry-example-com
  secretName: regcred-pods
  attachTo: Pods
  namespaces:
    include: [gitops]
YAML
run cat "${state}/cps-pods.yaml"
run kubectl apply -f "${state}/cps-pods.yaml"
wait_for kubectl wait clusterpullsecret/gitops-registry --for=condition=Ready --timeout=1s
run kubectl get clusterpullsecret gitops-registry -o jsonpath='{.status.injection}{"\n"}'
run kubectl -n gitops create deployment web --image=registry.example.com/shop/web:1.0
wait_for bash -c "kubectl -n gitops get pods -o jsonpath='{.items[*].status.phase}' | grep -qx Running"
run kubectl -n gitops get pods -o custom-columns=POD:.metadata.name,STATUS:.status.phase,PULL_SECRETS:.spec.imagePullSecrets[*].name
run kubectl -n gitops get serviceaccount default -o jsonpath='{.imagePullSecrets}{"\n"}'
note "The Pod has Argo CD's app-own (copied from its ServiceAccount) and regcred-pods (from the"
note "policy); the ServiceAccount is exactly as Git says. In ServiceAccounts mode a tool that"
note "keeps removing the name is answered with backoff and reported as Contested, naming its"
note "field manager and the fix (docs/gitops.md)."

step "8. Teams on plain YAML: move inline imagePullSecrets onto the ServiceAccount, offline"
mkdir -p "${state}/manifests"
cat >"${state}/manifests/worker.yaml" <<'YAML'
# The worker of the reports team.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
  namespace: reports
spec:
  selector:
    matchLabels: {app: worker}
  template:
    metadata:
      labels: {app: worker}
    spec:
      serviceAccountName: worker
      imagePullSecrets:
        - name: regcred # rotated by the platform team
      containers:
        - name: worker
          image: registry.example.com/reports/worker:1.4 # pinned until Q3
YAML
pushd "${state}" >/dev/null
run cat manifests/worker.yaml
run_may_fail kubectl pullsecrets manifests scan manifests
note "Offline, nothing defines regcred or the worker ServiceAccount: scan says so (exit 1)."
run kubectl pullsecrets manifests migrate manifests
run kubectl pullsecrets manifests migrate manifests --write
run ls manifests
run kubectl pullsecrets manifests migrate manifests
popd >/dev/null
note "Only the edited lines changed; every comment stayed. A second run has nothing to do."
