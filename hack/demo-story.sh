# demo-story.sh is the story told by demo.sh, sourced by it (it uses its
# step/note/run helpers, $state, $pids and an exported KUBECONFIG).

step "1. A team deploys an app whose image lives in a private registry"
run kubectl create namespace shop
run kubectl -n shop create deployment web --image=registry.example.com/shop/web:1.0
wait_for bash -c "kubectl -n shop get pods -o jsonpath='{.items[*].status.containerStatuses[*].state.waiting.reason}' | grep -q ImagePullBackOff"
run kubectl -n shop get pods
note "ImagePullBackOff: the Pod names no pull secret, and its ServiceAccount has none."

step "2. The platform team installs the controller and stores the credential once"
run kubectl apply -f config/crd/bases/pullsecrets.dev_clusterpullsecrets.yaml
run kubectl create namespace pullsecrets-system
run kubectl -n pullsecrets-system create secret docker-registry registry-example-com \
  --docker-server=registry.example.com --docker-username=ci-bot --docker-password=not-a-real-password
pullsecrets-controller --kubeconfig "${KUBECONFIG}" --source-namespaces pullsecrets-system --leader-elect=false \
  --metrics-bind-address 0 --health-probe-bind-address 0 >"${state}/controller.log" 2>&1 &
pids+=($!)
note "(pullsecrets-controller is running in the background; its log: ${state}/controller.log)"

step "3. One ClusterPullSecret: every namespace, every ServiceAccount, and replace Pods that failed"
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

step "4. A new namespace is served from the watch, within a second"
run kubectl create namespace billing
wait_for bash -c "kubectl -n billing get serviceaccount default -o jsonpath='{.imagePullSecrets[*].name}' | grep -q regcred"
run kubectl -n billing get secret regcred -o custom-columns=NAME:.metadata.name,TYPE:.type,MANAGED_BY:.metadata.labels.app\\.kubernetes\\.io/managed-by
run kubectl -n billing get serviceaccount default -o jsonpath='{.imagePullSecrets}{"\n"}'

step "5. Rename the secret everywhere: new copies, then attach, then detach the old name"
run kubectl patch clusterpullsecret registry-example-com --type=merge -p '{"spec":{"secretName":"regcred-2026"}}'
wait_for bash -c "kubectl -n shop get serviceaccount default -o jsonpath='{.imagePullSecrets[*].name}' | grep -qx regcred-2026"
run kubectl -n shop get serviceaccount default -o jsonpath='{.imagePullSecrets}{"\n"}'
wait_for bash -c "kubectl get clusterpullsecret registry-example-com -o jsonpath='{.status.secretName}/{.status.pendingRetirement}' | grep -qx regcred-2026/1"
run kubectl get clusterpullsecret registry-example-com -o custom-columns=SECRET:.status.secretName,READY:.status.namespaces.summary,PENDING_RETIREMENT:.status.pendingRetirement
run kubectl -n shop get secrets
note "shop's old copy stays while its running Pod lists regcred (a restarted container may pull"
note "again); billing's is gone already."
