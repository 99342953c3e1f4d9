package rename

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/secretuse"
)

func refList(names ...string) []corev1.LocalObjectReference {
	var out []corev1.LocalObjectReference
	for _, n := range names {
		out = append(out, corev1.LocalObjectReference{Name: n})
	}
	return out
}

func oldSecret() *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "old"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}}
}

func tpl(obj any) secretuse.Template {
	t, ok := secretuse.TemplateOf(obj)
	if !ok {
		panic(fmt.Sprintf("%T is not a workload", obj))
	}
	return t
}

func deployment(name string, replicas int32, pull ...string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{ImagePullSecrets: refList(pull...)}}}}
}

func TestPlan(t *testing.T) {
	t.Parallel()
	opts := planOptions{oldName: "old", newName: "new"}
	copyOf := oldSecret()
	copyOf.Labels = map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue, v1alpha1.OwnerLabel: "cps"}
	opaque := oldSecret()
	opaque.Type = corev1.SecretTypeOpaque
	other := oldSecret()
	other.Data = map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"x":{}}}`)}
	ownedRS := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-1", OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: "web", Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(1)), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{ImagePullSecrets: refList("old")}}}}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "migrate"}, Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{ImagePullSecrets: refList("old")}}}}
	tests := []struct {
		name     string
		old, new *corev1.Secret
		uses     secretuse.Namespace
		opts     planOptions
		refused  string
		sas      int
		patches  []string
		held     []string
		retire   bool
		warnings int
	}{
		{name: "a controller copy", old: copyOf, refused: "is a copy made by ClusterPullSecret cps"},
		{name: "not a pull secret", old: opaque, refused: "is of type Opaque, not a pull secret"},
		{name: "NEW with other data", old: oldSecret(), new: other, refused: "holds other credentials than old"},
		{name: "nothing uses it", old: oldSecret(), retire: true},
		{name: "ServiceAccounts move to NEW, then nothing holds it", old: oldSecret(),
			uses: secretuse.Namespace{ServiceAccounts: []*corev1.ServiceAccount{{ObjectMeta: metav1.ObjectMeta{Name: "default"}, ImagePullSecrets: refList("theirs", "old")}}},
			sas:  1, retire: true},
		{name: "a Deployment at zero replicas holds it", old: oldSecret(),
			uses: secretuse.Namespace{Templates: []secretuse.Template{tpl(deployment("web", 0, "old"))}},
			held: []string{"Deployment web"}},
		{name: "--update-workloads repoints it, then nothing holds it", old: oldSecret(), opts: planOptions{oldName: "old", newName: "new", updateWorkloads: true},
			uses:    secretuse.Namespace{Templates: []secretuse.Template{tpl(deployment("web", 0, "old"))}},
			patches: []string{"deployment.apps/web"}, retire: true},
		{name: "the ReplicaSet of a rollout holds it until it is scaled down", old: oldSecret(), opts: planOptions{oldName: "old", newName: "new", updateWorkloads: true},
			uses:    secretuse.Namespace{Templates: []secretuse.Template{tpl(deployment("web", 1, "old")), tpl(ownedRS)}},
			patches: []string{"deployment.apps/web"}, held: []string{"ReplicaSet web-1"}},
		{name: "a running Job cannot change and holds it", old: oldSecret(), opts: planOptions{oldName: "old", newName: "new", updateWorkloads: true},
			uses: secretuse.Namespace{Templates: []secretuse.Template{tpl(job)}}, held: []string{"Job migrate"}, warnings: 1},
		{name: "a live Pod holds it", old: oldSecret(),
			uses: secretuse.Namespace{Pods: []*corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{ImagePullSecrets: refList("old")}}}},
			held: []string{"Pod p"}},
		{name: "--keep-old", old: oldSecret(), opts: planOptions{oldName: "old", newName: "new", keepOld: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := tt.opts
			if o.oldName == "" {
				o = opts
			}
			p := plan("shop", tt.old, tt.new, tt.uses, o)
			if tt.refused != "" {
				if !strings.Contains(p.refused, tt.refused) {
					t.Fatalf("refused %q, want %q", p.refused, tt.refused)
				}
				return
			}
			var patches []string
			for _, pt := range p.patches {
				patches = append(patches, pt.resource+"/"+pt.name)
			}
			if p.refused != "" || len(p.serviceAccounts) != tt.sas || !slices.Equal(patches, tt.patches) || !slices.Equal(p.held, tt.held) || p.retire != tt.retire || len(p.warnings) != tt.warnings {
				t.Errorf("plan = refused %q, %d ServiceAccounts, patches %v, held %v, retire %v, warnings %v", p.refused, len(p.serviceAccounts), patches, p.held, p.retire, p.warnings)
			}
		})
	}
}

// TestPlanRandomized checks, over random namespaces, that OLD is deleted
// exactly when, after the plan's edits, no ServiceAccount lists it, no
// live Pod reads it and no active template reads it (an oracle written
// from that rule, not from the code), and that no ServiceAccount the plan
// edits still lists OLD.
func TestPlanRandomized(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func() []string {
		var out []string
		for _, n := range []string{"old", "new", "other"} {
			if rng.IntN(2) == 0 {
				out = append(out, n)
			}
		}
		return out
	}
	for iter := range 3000 {
		o := planOptions{oldName: "old", newName: "new", updateWorkloads: rng.IntN(2) == 0, keepOld: rng.IntN(5) == 0}
		var uses secretuse.Namespace
		for i := range rng.IntN(3) {
			uses.ServiceAccounts = append(uses.ServiceAccounts, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sa%d", i)}, ImagePullSecrets: refList(pick()...)})
		}
		for i := range rng.IntN(3) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod%d", i)}, Spec: corev1.PodSpec{ImagePullSecrets: refList(pick()...)}}
			if rng.IntN(3) == 0 {
				p.Status.Phase = corev1.PodSucceeded
			}
			uses.Pods = append(uses.Pods, p)
		}
		for i := range rng.IntN(3) {
			uses.Templates = append(uses.Templates, tpl(deployment(fmt.Sprintf("dep%d", i), int32(rng.IntN(2)), pick()...)))
		}
		if rng.IntN(3) == 0 {
			uses.Templates = append(uses.Templates, tpl(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "job"}, Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{ImagePullSecrets: refList(pick()...)}}}}))
		}
		p := plan("shop", oldSecret(), nil, uses, o)

		holds := false
		for _, sa := range uses.ServiceAccounts {
			for _, e := range p.serviceAccounts {
				if e.sa == sa && slices.ContainsFunc(e.list, func(r corev1.LocalObjectReference) bool { return r.Name == "old" }) {
					t.Fatalf("iteration %d: ServiceAccount %s still lists old after the edit", iter, sa.Name)
				}
			}
		}
		for _, pod := range uses.Pods {
			if pod.Status.Phase != corev1.PodSucceeded && slices.ContainsFunc(pod.Spec.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == "old" }) {
				holds = true
			}
		}
		for _, tp := range uses.Templates {
			lists := slices.ContainsFunc(tp.Spec.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == "old" })
			repointed := o.updateWorkloads && tp.Kind == "Deployment"
			if lists && !repointed {
				holds = true
			}
		}
		if want := !holds && !o.keepOld; p.retire != want {
			t.Fatalf("iteration %d: retire = %v, want %v (held %v, options %+v)", iter, p.retire, want, p.held, o)
		}
	}
}
