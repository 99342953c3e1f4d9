// Package diagnose explains why a Pod cannot pull its images, and what is
// wrong with the pull secrets of a ServiceAccount, from objects the caller
// has already read: the Pod, its Events, its ServiceAccount and the Secrets
// of its namespace. It imports no Kubernetes client, so that `kubectl
// pullsecrets doctor` and `status` share one set of rules, and tests feed
// it objects directly.
//
// The rules are those of Kubernetes v1.37:
//
//   - the ServiceAccount admission plugin copies the ServiceAccount's
//     imagePullSecrets into a Pod on CREATE, and only into a Pod that lists
//     none (plugin/pkg/admission/serviceaccount/admission.go); a Pod's list
//     never changes afterwards;
//   - the kubelet reads the Secrets the Pod lists; a missing one yields the
//     FailedToRetrieveImagePullSecret event and the pull goes on without it;
//     one it cannot decode fails every pull of the Pod, with the decode
//     error as the container's waiting reason (pkg/kubelet/images,
//     pkg/credentialprovider/secrets);
//   - credentials are matched to images by package credentials, which
//     mirrors the kubelet's keyring;
//   - the registry's answer reaches the Pod only as containerd's error text
//     in the container's waiting message and the "Failed to pull image"
//     Event, which Classify reads;
//   - an expired token gets no text of its own from containerd (ECR's 403
//     body never reaches it): a refused credential is dated by the token
//     itself, its ClusterPullSecret's status or its Secret's
//     pullsecrets.dev/expires-at (expiry.go).
//
// Nothing in a Diagnosis holds a password: credentials are named by Secret,
// registry key and username only.
package diagnose
