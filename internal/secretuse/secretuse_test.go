package secretuse_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/pullsecrets/pullsecrets/internal/secretuse"
)

func pull(names ...string) corev1.PodSpec {
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "reg.example.com/app"}}}
	for _, n := range names {
		spec.ImagePullSecrets = append(spec.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
	}
	return spec
}

func meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID("uid-" + name)}
}

var owned = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", Controller: ptr.To(true)}}

func TestTemplateOf(t *testing.T) {
	t.Parallel()
	now := metav1.Now()
	done := batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}
	failed := batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}}
	tests := []struct {
		name       string
		obj        any
		kind       string
		wantOK     bool
		wantActive bool
	}{
		{"deployment at zero replicas", &appsv1.Deployment{ObjectMeta: meta("web"), Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(0)), Template: corev1.PodTemplateSpec{Spec: pull("a")}}}, "Deployment", true, true},
		{"deployment being deleted", &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", DeletionTimestamp: &now}}, "Deployment", true, false},
		{"replica set of a deployment, scaled down", &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-1", OwnerReferences: owned}, Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(0))}}, "ReplicaSet", true, false},
		{"replica set of a deployment, still running Pods", &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-1", OwnerReferences: owned}, Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(0))}, Status: appsv1.ReplicaSetStatus{Replicas: 1}}, "ReplicaSet", true, true},
		{"replica set of a deployment, scaled up", &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-1", OwnerReferences: owned}, Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(2))}}, "ReplicaSet", true, true},
		{"bare replica set at zero", &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "rs"}, Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(0))}}, "ReplicaSet", true, true},
		{"statefulset", &appsv1.StatefulSet{ObjectMeta: meta("db")}, "StatefulSet", true, true},
		{"daemonset", &appsv1.DaemonSet{ObjectMeta: meta("agent")}, "DaemonSet", true, true},
		{"running job", &batchv1.Job{ObjectMeta: meta("migrate")}, "Job", true, true},
		{"complete job", &batchv1.Job{ObjectMeta: meta("migrate"), Status: done}, "Job", true, false},
		{"failed job", &batchv1.Job{ObjectMeta: meta("migrate"), Status: failed}, "Job", true, false},
		{"suspended cronjob", &batchv1.CronJob{ObjectMeta: meta("nightly"), Spec: batchv1.CronJobSpec{Suspend: ptr.To(true)}}, "CronJob", true, true},
		{"replication controller", &corev1.ReplicationController{ObjectMeta: meta("rc"), Spec: corev1.ReplicationControllerSpec{Template: &corev1.PodTemplateSpec{}}}, "ReplicationController", true, true},
		{"replication controller without a template", &corev1.ReplicationController{ObjectMeta: meta("rc")}, "ReplicationController", true, false},
		{"a Pod is not a template", &corev1.Pod{ObjectMeta: meta("p")}, "", false, false},
		{"nil", nil, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := secretuse.TemplateOf(tt.obj)
			if ok != tt.wantOK || got.Active != tt.wantActive || got.Kind != tt.kind {
				t.Errorf("TemplateOf = %+v, %v; want kind %q, ok %v, active %v", got, ok, tt.kind, tt.wantOK, tt.wantActive)
			}
		})
	}
}

func TestHolders(t *testing.T) {
	t.Parallel()
	now := metav1.Now()
	deployAtZero, _ := secretuse.TemplateOf(&appsv1.Deployment{ObjectMeta: meta("web"), Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(0)), Template: corev1.PodTemplateSpec{Spec: pull("regcred")}}})
	finishedJob, _ := secretuse.TemplateOf(&batchv1.Job{ObjectMeta: meta("migrate"), Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: pull("regcred")}},
		Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}})
	cron, _ := secretuse.TemplateOf(&batchv1.CronJob{ObjectMeta: meta("nightly"), Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: pull("regcred")}}}}})
	volume := corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "regcred"}}}}}
	tests := []struct {
		name string
		in   secretuse.Namespace
		want []string
	}{
		{"nothing", secretuse.Namespace{}, nil},
		{"a ServiceAccount", secretuse.Namespace{ServiceAccounts: []*corev1.ServiceAccount{
			{ObjectMeta: meta("default"), ImagePullSecrets: []corev1.LocalObjectReference{{Name: "other"}, {Name: "regcred"}}},
			{ObjectMeta: meta("builder"), ImagePullSecrets: []corev1.LocalObjectReference{{Name: "other"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "going", DeletionTimestamp: &now}, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}},
		}}, []string{"ServiceAccount default"}},
		{"live Pods, by pull secret and by volume", secretuse.Namespace{Pods: []*corev1.Pod{
			{ObjectMeta: meta("running"), Spec: pull("regcred"), Status: corev1.PodStatus{Phase: corev1.PodRunning}},
			{ObjectMeta: meta("pending"), Spec: volume},
			{ObjectMeta: meta("done"), Spec: pull("regcred"), Status: corev1.PodStatus{Phase: corev1.PodSucceeded}},
			{ObjectMeta: meta("failed"), Spec: pull("regcred"), Status: corev1.PodStatus{Phase: corev1.PodFailed}},
			{ObjectMeta: metav1.ObjectMeta{Name: "terminating", DeletionTimestamp: &now}, Spec: pull("regcred")},
			{ObjectMeta: meta("unrelated"), Spec: pull("other")},
		}}, []string{"Pod pending", "Pod running"}},
		{"templates: a Deployment at zero replicas holds, a finished Job does not", secretuse.Namespace{Templates: []secretuse.Template{deployAtZero, finishedJob, cron}},
			[]string{"CronJob nightly", "Deployment web"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := secretuse.Holders("regcred", tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("Holders = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestHoldersRandomized checks properties of Holders over random
// namespaces, against an oracle written from the rule's statement rather
// than the code: a holder is named exactly when an object that can still
// read the Secret names it; the answer is sorted and does not depend on
// the order of the input; adding an object never removes a holder.
func TestHoldersRandomized(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "b", "c"}
	pick := func() []string {
		var out []string
		for _, n := range names {
			if rng.IntN(3) == 0 {
				out = append(out, n)
			}
		}
		return out
	}
	now := metav1.Now()
	for iter := range 2000 {
		var in secretuse.Namespace
		want := map[string][]string{}
		for i := range rng.IntN(4) {
			refs := pick()
			sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sa%d", i)}}
			for _, n := range refs {
				sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
			}
			deleting := rng.IntN(5) == 0
			if deleting {
				sa.DeletionTimestamp = &now
			}
			in.ServiceAccounts = append(in.ServiceAccounts, sa)
			for _, n := range refs {
				if !deleting {
					want[n] = append(want[n], "ServiceAccount "+sa.Name)
				}
			}
		}
		for i := range rng.IntN(5) {
			refs := pick()
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod%d", i)}}
			for j, n := range refs {
				if j%2 == 0 {
					p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
				} else {
					p.Spec.Containers = append(p.Spec.Containers, corev1.Container{EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: n}}}}})
				}
			}
			live := true
			switch rng.IntN(4) {
			case 0:
				p.Status.Phase, live = corev1.PodSucceeded, false
			case 1:
				p.DeletionTimestamp, live = &now, false
			}
			in.Pods = append(in.Pods, p)
			for _, n := range refs {
				if live {
					want[n] = append(want[n], "Pod "+p.Name)
				}
			}
		}
		for i := range rng.IntN(4) {
			refs := pick()
			spec := pull(refs...)
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("dep%d", i)}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(rng.IntN(2))), Template: corev1.PodTemplateSpec{Spec: spec}}}
			alive := rng.IntN(4) != 0
			if !alive {
				d.DeletionTimestamp = &now
			}
			tpl, _ := secretuse.TemplateOf(d)
			in.Templates = append(in.Templates, tpl)
			for _, n := range refs {
				if alive {
					want[n] = append(want[n], "Deployment "+d.Name)
				}
			}
		}
		for _, n := range append(names, "unused") {
			w := want[n]
			slices.Sort(w)
			got := secretuse.Holders(n, in)
			if !slices.Equal(got, w) {
				t.Fatalf("iteration %d, %s: Holders = %q, want %q", iter, n, got, w)
			}
			shuffled := in
			shuffled.Pods = slices.Clone(in.Pods)
			rng.Shuffle(len(shuffled.Pods), func(i, j int) { shuffled.Pods[i], shuffled.Pods[j] = shuffled.Pods[j], shuffled.Pods[i] })
			if again := secretuse.Holders(n, shuffled); !slices.Equal(again, got) {
				t.Fatalf("iteration %d: the order of the Pods changed the answer", iter)
			}
			more := in
			more.Pods = append(slices.Clone(in.Pods), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "extra"}, Spec: pull("zzz")})
			if bigger := secretuse.Holders(n, more); !slices.Equal(bigger, got) {
				t.Fatalf("iteration %d: a Pod reading another Secret changed the answer", iter)
			}
		}
	}
}

// TestHeldBy pins the strings and the rule the planner can share: only
// live users that read the name, sorted, once each.
func TestHeldBy(t *testing.T) {
	t.Parallel()
	got := secretuse.HeldBy("regcred", []secretuse.User{
		{Kind: "Pod", Name: "b", Refs: []string{"regcred"}, Live: true},
		{Kind: "ServiceAccount", Name: "default", Refs: []string{"x", "regcred"}, Live: true},
		{Kind: "Pod", Name: "a", Refs: []string{"regcred"}, Live: true},
		{Kind: "Pod", Name: "a", Refs: []string{"regcred"}, Live: true},
		{Kind: "Pod", Name: "done", Refs: []string{"regcred"}},
		{Kind: "Deployment", Name: "web", Refs: []string{"other"}, Live: true},
	})
	if want := []string{"Pod a", "Pod b", "ServiceAccount default"}; !slices.Equal(got, want) {
		t.Errorf("HeldBy = %q, want %q", got, want)
	}
}
