#!/usr/bin/env bash
# demo-cloud.sh tells the cloud story: a registry whose tokens expire (an
# ECR stand-in minting 4-minute tokens), the real ecr-credential-provider,
# and a ClusterPullSecret that keeps every namespace pulling across token
# lifetimes, through an outage of the token endpoint. `make demo-cloud`.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/demo-lib.sh"

step "1. A registry whose credential is a token that expires, as on EKS"
go build -o "${root}/bin/fake-ecr" "${root}/hack/fake-ecr"
fake-ecr --token-lifetime 4m --aws-dir "${state}" >"${state}/fake-ecr.out" 2>"${state}/fake-ecr.log" &
pids+=($!)
wait_for grep -q '^ENV=' "${state}/fake-ecr.out"
host="$(sed -n 's/^HOST=//p' "${state}/fake-ecr.out")"
admin="$(sed -n 's/^ADMIN=//p' "${state}/fake-ecr.out")"
note "An Amazon ECR API stand-in on ${admin} mints a new token at every call; each lasts 4 minutes"
note "(12 hours on AWS). The real ecr-credential-provider, built from the module proxy, is pointed"
note "at it with AWS_ENDPOINT_URL_ECR, exactly as the AWS SDK allows."
plugins="$("${root}/hack/build-credproviders.sh")"
run ls "${plugins}"

step "2. The cluster admin configures the plugin, as for the kubelet; the controller runs it"
{
  cat <<YAML
apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: ecr-credential-provider
    matchImages: ["*.dkr.ecr.*.amazonaws.com"]
    defaultCacheDuration: 12h
    apiVersion: credentialprovider.kubelet.k8s.io/v1
    env:
YAML
  for kv in $(sed -n 's/^ENV=//p' "${state}/fake-ecr.out"); do
    printf '      - {name: %s, value: "%s"}\n' "${kv%%=*}" "${kv#*=}"
  done
} >"${state}/credential-providers.yaml"
run cat "${state}/credential-providers.yaml"
note "The kubelet's own CredentialProviderConfig: which plugins exist, the images each may be asked"
note "for, their args and env. Only the cluster admin writes it (in the cluster: the ConfigMap"
note "pullsecrets-credential-providers). On EKS there is no env: the controller's ServiceAccount gets"
note "an IAM role (IRSA or Pod Identity); docs/short-lived-tokens.md shows EKS, GKE and AKS."
run kubectl apply -f config/crd/bases/pullsecrets.dev_clusterpullsecrets.yaml
run kubectl create namespace pullsecrets-system
pullsecrets-controller --kubeconfig "${KUBECONFIG}" --source-namespaces pullsecrets-system --ownership-key-namespace pullsecrets-system \
  --credential-provider-config "${state}/credential-providers.yaml" --credential-provider-bin-dir "${plugins}" \
  --leader-elect=false --metrics-bind-address 0 --health-probe-bind-address 0 \
  >"${state}/controller.log" 2>&1 &
pids+=($!)
note "(pullsecrets-controller is running in the background; its log: ${state}/controller.log)"

step "3. One ClusterPullSecret whose source is the plugin: a provider's name and an image, nothing else"
cat >"${state}/cps.yaml" <<YAML
apiVersion: pullsecrets.dev/v1alpha1
kind: ClusterPullSecret
metadata:
  name: ecr
spec:
  secretName: ecr
  source:
    provider:
      name: ecr-credential-provider
      image: ${host}
YAML
run cat "${state}/cps.yaml"
note "A ClusterPullSecret cannot set a plugin's env, args or token audience: those are the admin's."
run kubectl apply -f "${state}/cps.yaml"
run kubectl create namespace shop
wait_for kubectl wait clusterpullsecret/ecr --for=condition=Ready --timeout=1s
run kubectl get clusterpullsecret ecr -o jsonpath='{.status.credential}{"\n"}'
run kubectl -n shop get secret ecr -o jsonpath='{.metadata.annotations.pullsecrets\.dev/expires-at}{"\n"}'
run kubectl -n shop create deployment web --image="${host}/shop/web:1.0"
wait_for bash -c "kubectl -n shop get pods -o jsonpath='{.items[*].status.phase}' | grep -qx Running"
run kubectl -n shop get pods -o custom-columns=POD:.metadata.name,STATUS:.status.phase,PULL_SECRETS:.spec.imagePullSecrets[*].name

step "4. Before the token expires, a new one, in every copy"
before="$(kubectl get clusterpullsecret ecr -o jsonpath='{.status.credential.obtainedAt}')"
note "The plugin answered cacheDuration = half the token's remaining life; the controller runs it"
note "again at 50-70% of that (never more than once a minute here). Waiting for the next run..."
for _ in $(seq 1 120); do
  [[ "$(kubectl get clusterpullsecret ecr -o jsonpath='{.status.credential.obtainedAt}')" != "${before}" ]] && break
  sleep 1
done
run kubectl get clusterpullsecret ecr -o jsonpath='{.status.credential}{"\n"}'
run kubectl -n shop get secret ecr -o jsonpath='{.metadata.annotations.pullsecrets\.dev/expires-at}{"\n"}'
note "The running Pod needed nothing: the kubelet reads pull secrets when it pulls."

step "5. The token endpoint fails: the credential in place stays, and the status says so"
run curl -s -X POST "${admin}/fail?n=100000"
for _ in $(seq 1 90); do
  kubectl get clusterpullsecret ecr -o jsonpath='{.status.conditions[?(@.type=="CredentialRefreshed")].reason}' | grep -q RefreshFailed && break
  sleep 1
done
run kubectl get clusterpullsecret ecr -o jsonpath='{.status.conditions[?(@.type=="CredentialRefreshed")].message}{"\n"}'
note "Retries back off from 10 s to 5 min, always before the copies expire; alert on"
note "pullsecrets_credential_expiry_timestamp_seconds - time() before they do."
run curl -s -X POST "${admin}/recover"
for _ in $(seq 1 120); do
  kubectl get clusterpullsecret ecr -o jsonpath='{.status.conditions[?(@.type=="CredentialRefreshed")].reason}' | grep -q '^Refreshed' && break
  sleep 1
done
run kubectl get clusterpullsecret ecr -o jsonpath='{.status.conditions[?(@.type=="CredentialRefreshed")].message}{"\n"}'
run kubectl get clusterpullsecrets
