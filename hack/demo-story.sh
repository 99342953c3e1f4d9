# demo-story.sh is the story told by demo.sh, sourced by it (it uses its
# step/note/run helpers and an exported KUBECONFIG).

step "A team deploys an app whose image lives in a private registry"
run kubectl create namespace shop
run kubectl -n shop create deployment web --image=registry.example.com/shop/web:1.0
sleep 2
run kubectl -n shop get pods -o custom-columns=POD:.metadata.name,SA:.spec.serviceAccountName,PULL_SECRETS:.spec.imagePullSecrets
note "No pull secret: on a real node this Pod would be in ImagePullBackOff."

step "The manual fix: a docker-registry Secret, attached to the namespace's default ServiceAccount"
run kubectl -n shop create secret docker-registry regcred \
  --docker-server=registry.example.com --docker-username=ci-bot --docker-password=not-a-real-password
note "The SA's imagePullSecrets list is atomic: patch it carefully, keeping other entries."
run kubectl -n shop patch serviceaccount default --type=json \
  -p='[{"op":"add","path":"/imagePullSecrets","value":[{"name":"regcred"}]}]'

step "Pods created before the patch keep failing: admission only copies the list at creation"
run kubectl -n shop get pods -o custom-columns=POD:.metadata.name,PULL_SECRETS:.spec.imagePullSecrets
run kubectl -n shop rollout restart deployment/web
sleep 3
run kubectl -n shop get pods -o custom-columns=POD:.metadata.name,PULL_SECRETS:.spec.imagePullSecrets,CREATED:.metadata.creationTimestamp
note "The new Pod carries regcred, copied from its ServiceAccount by the API server."
