package diagnose

import (
	"fmt"
	"regexp"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fixer writes the command lines that fix a Pod's problems. What only the
// user knows (a username, a new tag) is an UPPER-CASE placeholder; a
// password is never on a command line (--docker-password-stdin).
type fixer struct {
	ns, pod string
	// kind and name are the workload that holds the Pod's template
	// (kubectl resource name); empty for a bare Pod.
	kind, name string
}

// newFixer finds the Pod's workload.
func newFixer(pod *corev1.Pod) fixer {
	f := fixer{ns: pod.Namespace, pod: pod.Name}
	f.kind, f.name = workload(pod)
	return f
}

// create makes the missing (or, with overwrite, replaces the broken) Secret
// for the registry of image.
func (f fixer) create(name, image string, overwrite bool) string {
	cmd := fmt.Sprintf("kubectl pullsecrets create %s -n %s%s --docker-username=USER --docker-password-stdin", name, f.ns, serverFlag(image))
	if overwrite {
		cmd += " --overwrite"
	}
	return cmd
}

// createFor makes a new Secret for the registry of image, attaches it to
// the ServiceAccount and restarts the Pods that need it.
func (f fixer) createFor(image, sa string) string {
	return fmt.Sprintf("kubectl pullsecrets create %s -n %s%s --docker-username=USER --docker-password-stdin --attach %s && kubectl pullsecrets restart -n %s",
		SecretNameFor(image), f.ns, serverFlag(image), sa, f.ns)
}

// recreate replaces rejected credentials, checking the new ones first.
func (f fixer) recreate(name, image, user string) string {
	if user == "" {
		user = "USER"
	}
	return fmt.Sprintf("kubectl pullsecrets create %s -n %s --overwrite%s --docker-username=%s --docker-password-stdin --verify --verify-image %s",
		name, f.ns, serverFlag(image), shellWord(user), image)
}

// restart replaces the Pod so that admission gives the new one the
// ServiceAccount's list.
func (f fixer) restart(recreated bool) string {
	if recreated {
		return "kubectl pullsecrets restart -n " + f.ns
	}
	return fmt.Sprintf("kubectl -n %s delete pod %s   # a bare Pod: create it again from its manifest afterwards", f.ns, f.pod)
}

// verify asks the registry itself.
func (f fixer) verify() string {
	return fmt.Sprintf("kubectl pullsecrets doctor %s -n %s --verify", f.pod, f.ns)
}

// addToTemplate adds names to the workload's Pod template: the list there
// hides the ServiceAccount's, so it must carry them itself.
func (f fixer) addToTemplate(names []string) string {
	kind, name, path := f.kind, f.name, f.specPath()
	if kind == "" || kind == "job" {
		// A bare Pod or a Job: nothing to patch (a Job's template is
		// immutable); the manifests must change.
		return "kubectl pullsecrets manifests migrate PATH-TO-MANIFESTS --write"
	}
	ops := make([]string, 0, len(names))
	for _, n := range names {
		ops = append(ops, fmt.Sprintf(`{"op":"add","path":"%s/imagePullSecrets/-","value":{"name":%q}}`, path, n))
	}
	return fmt.Sprintf("kubectl -n %s patch %s/%s --type=json -p '[%s]'", f.ns, kind, name, strings.Join(ops, ","))
}

// setImage corrects an image name in the workload.
func (f fixer) setImage(container string) string {
	kind, name := f.kind, f.name
	if kind == "" || kind == "job" {
		return "kubectl pullsecrets manifests scan PATH-TO-MANIFESTS   # then correct the image and apply"
	}
	return fmt.Sprintf("kubectl -n %s set image %s/%s %s=IMAGE:TAG", f.ns, kind, name, container)
}

// specPath is the JSON pointer of the workload template's PodSpec.
func (f fixer) specPath() string { return "/spec/template/spec" }

// workload guesses the object that holds the Pod's template: the
// Deployment of a ReplicaSet that carries the pod-template-hash, else the
// owner itself. It returns the kubectl resource name and the object's
// name, both empty for a bare Pod.
func workload(pod *corev1.Pod) (kind, name string) {
	owner := metav1.GetControllerOf(pod)
	if owner == nil {
		return "", ""
	}
	switch owner.Kind {
	case "ReplicaSet":
		if hash := pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; hash != "" && strings.HasSuffix(owner.Name, "-"+hash) {
			return "deployment", strings.TrimSuffix(owner.Name, "-"+hash)
		}
		return "replicaset", owner.Name
	case "StatefulSet", "DaemonSet", "ReplicationController", "Job":
		return strings.ToLower(owner.Kind), owner.Name
	}
	return "", ""
}

// serverFlag is --docker-server for the image's registry; nothing for
// Docker Hub, which is the default (as in kubectl).
func serverFlag(image string) string {
	host := registryHost(image)
	if host == "" || host == "docker.io" {
		return ""
	}
	return " --docker-server=" + host
}

var notNameChars = regexp.MustCompile(`[^a-z0-9-]+`)

// SecretNameFor proposes a Secret name for an image's registry:
// registry.example.com:5000 -> registry-example-com-5000.
func SecretNameFor(image string) string {
	host := registryHost(image)
	if host == "docker.io" {
		return "docker-hub"
	}
	name := strings.Trim(notNameChars.ReplaceAllString(strings.ToLower(host), "-"), "-")
	if name == "" {
		return "regcred"
	}
	return name
}

var plainWord = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellWord quotes s for a shell when it needs it.
func shellWord(s string) string {
	if plainWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
