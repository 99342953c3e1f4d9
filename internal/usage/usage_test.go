package usage

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"unique"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pullsecrets/pullsecrets/internal/planner"
)

func TestSecretRefs(t *testing.T) {
	t.Parallel()
	spec := corev1.PodSpec{
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "pull"}},
		Volumes: []corev1.Volume{
			{Name: "a", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol"}}},
			{Name: "b", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "proj"}}}, {}}}}},
			{Name: "c", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "d", NodePublishSecretRef: &corev1.LocalObjectReference{Name: "csi"}}}},
			{Name: "d", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
		InitContainers: []corev1.Container{{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "initenv"}}}}}}},
		Containers: []corev1.Container{{
			EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "envfrom"}}},
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}},
			Env: []corev1.EnvVar{{Name: "Y", Value: "plain"}, {Name: "Z", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "pull"}}}}},
		}},
		EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "debug"}}}}}}},
	}
	want := []string{"csi", "debug", "envfrom", "initenv", "proj", "pull", "vol"}
	if got := SecretRefs(&spec); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := SecretRefs(&corev1.PodSpec{}); got != nil {
		t.Fatalf("empty spec: %v", got)
	}
}

func pod(name string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "reg.example.com/web:1"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func pulling(names ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		for _, n := range names {
			p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
		}
	}
}

func stuck(p *corev1.Pod) {
	p.Status.Phase = corev1.PodPending
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "reg.example.com/web:1",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}}
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d", UID: "rs-1", Controller: ptr.To(true)}}
}

func TestPodRecord(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		pod  *corev1.Pod
		want *planner.Pod
	}{
		{"reads no Secret and runs: nothing kept", pod("web"), nil},
		{"finished", pod("web", pulling("reg"), func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }), nil},
		{"being deleted", pod("web", pulling("reg"), func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{} }), nil},
		{"running with a pull secret: refs only, no UID", pod("web", pulling("reg", "other")),
			&planner.Pod{Name: "web", ServiceAccount: "default", PullSecrets: []string{"reg", "other"}, SecretRefs: []string{"other", "reg"}}},
		{"stuck: UID, owner and images", pod("web", stuck, func(p *corev1.Pod) { p.Spec.ServiceAccountName = "app" }),
			&planner.Pod{Name: "web", UID: "uid-web", ServiceAccount: "app", StuckImages: []string{"reg.example.com/web:1"},
				Owner: &planner.Owner{Group: "apps", Kind: "ReplicaSet", Name: "web-7d", UID: "rs-1"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := podRecord(tt.pod)
			if tt.want == nil {
				if r != nil {
					t.Fatalf("kept %+v", r.pod())
				}
				return
			}
			if d := cmp.Diff(*tt.want, r.pod(), cmpopts.EquateEmpty()); d != "" {
				t.Fatalf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestWorkloadRecord(t *testing.T) {
	t.Parallel()
	tmpl := corev1.PodTemplateSpec{Spec: corev1.PodSpec{ImagePullSecrets: []corev1.LocalObjectReference{{Name: "old"}}}}
	meta := metav1.ObjectMeta{Namespace: "shop", Name: "w", UID: "u"}
	owned := meta
	owned.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "d", UID: "d1", Controller: ptr.To(true)}}
	done := []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	for _, tt := range []struct {
		name   string
		obj    any
		kept   bool
		budget int
	}{
		{"Deployment scaled to 0 with a pull secret", &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0), Template: tmpl}}, true, -1},
		{"Deployment reading no Secret", &appsv1.Deployment{ObjectMeta: meta}, false, 0},
		{"ReplicaSet: a Deployment's scaled-down history", &appsv1.ReplicaSet{ObjectMeta: owned, Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](0), Template: tmpl}}, false, 0},
		{"ReplicaSet with Pods", &appsv1.ReplicaSet{ObjectMeta: owned, Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](2)}}, true, -1},
		{"bare ReplicaSet at 0", &appsv1.ReplicaSet{ObjectMeta: meta, Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](0), Template: tmpl}}, true, -1},
		{"StatefulSet", &appsv1.StatefulSet{ObjectMeta: meta}, true, -1},
		{"DaemonSet", &appsv1.DaemonSet{ObjectMeta: meta}, true, -1},
		{"Job with failures", &batchv1.Job{ObjectMeta: meta, Spec: batchv1.JobSpec{BackoffLimit: ptr.To[int32](3)}, Status: batchv1.JobStatus{Failed: 1}}, true, 2},
		{"Job at the default limit", &batchv1.Job{ObjectMeta: meta, Status: batchv1.JobStatus{Failed: 6}}, true, 0},
		{"finished Job", &batchv1.Job{ObjectMeta: meta, Spec: batchv1.JobSpec{Template: tmpl}, Status: batchv1.JobStatus{Conditions: done}}, false, 0},
		{"CronJob", &batchv1.CronJob{ObjectMeta: meta, Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl}}}}, true, -1},
		{"ReplicationController", &corev1.ReplicationController{ObjectMeta: meta, Spec: corev1.ReplicationControllerSpec{Template: &tmpl}}, true, -1},
	} {
		r := workloadRecord(tt.obj)
		if (r != nil) != tt.kept {
			t.Errorf("%s: kept = %v", tt.name, r != nil)
			continue
		}
		if r != nil && r.workload().FailureBudget != tt.budget {
			t.Errorf("%s: budget %d, want %d", tt.name, r.workload().FailureBudget, tt.budget)
		}
	}
}

// The store keeps records, drops what stops mattering, and tells which
// namespaces changed, but not for changes that do not matter.
func TestStoreEvents(t *testing.T) {
	t.Parallel()
	var changed []string
	synced := 0
	ix := New(func(ns string) { changed = append(changed, ns) }, func() { synced++ })
	s := &kindStore{ix: ix, kind: kinds()[0]}
	ix.kinds = []*kindStore{s}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Replace([]any{pod("a", pulling("reg")), pod("b")}, "1"))
	// The first list is not reported change by change: onSynced stands
	// for all of it.
	if len(ix.Pods("shop")) != 1 || !ix.Synced() || synced != 1 || len(changed) != 0 {
		t.Fatalf("after list: %+v, synced %d, changes %v", ix.Pods("shop"), synced, changed)
	}
	changed = []string{"shop"}
	// A status change of a running Pod changes no record.
	running := pod("a", pulling("reg"), func(p *corev1.Pod) { p.Status.PodIP = "10.0.0.1" })
	must(s.Update(running))
	if len(changed) != 1 {
		t.Fatalf("changes %v", changed)
	}
	must(s.Update(pod("a", pulling("reg"), func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })))
	if len(ix.Pods("shop")) != 0 || len(changed) != 2 {
		t.Fatalf("finished Pod kept: %+v, changes %v", ix.Pods("shop"), changed)
	}
	must(s.Add(pod("c", stuck)))
	must(s.Replace([]any{pod("d", pulling("x"))}, "2"))
	if got := ix.Pods("shop"); len(got) != 1 || got[0].Name != "d" {
		t.Fatalf("after relist: %+v", got)
	}
	must(s.Delete(pod("d")))
	if p, w := ix.Counts(); p != 0 || w != 0 {
		t.Fatalf("counts %d %d", p, w)
	}
}

// BenchmarkRecordBytes reports the memory the index keeps per Pod that
// lists a pull secret (the common case once pullsecrets attaches one).
func BenchmarkRecordBytes(b *testing.B) {
	const n = 20000
	for range b.N {
		ix := New(nil, nil)
		s := &kindStore{ix: ix, kind: kinds()[0]}
		pods := make([]*corev1.Pod, n)
		for i := range pods {
			pods[i] = pod(fmt.Sprintf("web-7d-%05d", i), pulling("regcred"))
			pods[i].Namespace = fmt.Sprintf("ns-%d", i%1000)
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, p := range pods {
			_ = s.Add(p)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(pods)
		runtime.KeepAlive(ix)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/pod")
	}
}

// A workload is its own owner: the record gives back its group, kind,
// name and UID, and two workloads of one kind share nothing but the kind.
func TestWorkloadRecordOwner(t *testing.T) {
	t.Parallel()
	rs := func(name, uid string) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID(uid)},
			Spec:       appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](1)},
		}
	}
	a, b := workloadRecord(rs("web-1", "u1")), workloadRecord(rs("web-2", "u2"))
	want := planner.Owner{Group: "apps", Kind: "ReplicaSet", Name: "web-1", UID: "u1"}
	if got := a.workload().Owner; got != want {
		t.Fatalf("owner %+v, want %+v", got, want)
	}
	if b.workload().UID != "u2" || a.kind != b.kind || a.equal(b) {
		t.Fatalf("records %+v and %+v", a, b)
	}
	cron := workloadRecord(&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "report", UID: "u3"},
		Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{ImagePullSecrets: []corev1.LocalObjectReference{{Name: "reg"}}}}}}}})
	if got := cron.workload().Owner; got != (planner.Owner{Group: "batch", Kind: "CronJob", Name: "report", UID: "u3"}) {
		t.Fatalf("CronJob owner %+v", got)
	}
}

// BenchmarkWorkloadRecordBytes reports the memory the index keeps per
// workload record: a ReplicaSet with Pods, each with its own UID.
func BenchmarkWorkloadRecordBytes(b *testing.B) {
	const n = 20000
	for range b.N {
		ix := New(nil, nil)
		s := &kindStore{ix: ix, kind: kinds()[2]}
		objs := make([]*appsv1.ReplicaSet, n)
		for i := range objs {
			objs[i] = &appsv1.ReplicaSet{
				ObjectMeta: metav1.ObjectMeta{
					Namespace: fmt.Sprintf("ns-%d", i%1000), Name: fmt.Sprintf("web-7d9f8b%05d", i),
					UID: types.UID(fmt.Sprintf("4f1c2a3e-0000-4000-8000-%012d", i)),
				},
				Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](3)},
			}
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, o := range objs {
			_ = s.Add(o)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(objs)
		runtime.KeepAlive(ix)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/workload")
	}
}

// The tables kept per namespace (sorted slices) hold exactly what a map
// by kind and name would, through random stores and removals of Pods and
// workloads of every kind, and a change is reported exactly when a record
// changed.
func TestTablesMatchAMapModelRandomized(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(22, 9))
	reported := 0
	ix := New(func(string) { reported++ }, nil)
	ix.synced.Store(true)
	type id struct{ ns, kind, name string }
	model := map[id]*record{}
	kindsOf := []string{"", "Deployment", "ReplicaSet", "Job", "CronJob"}
	for step := range 20000 {
		k := id{ns: fmt.Sprint("ns-", rng.IntN(4)), kind: kindsOf[rng.IntN(len(kindsOf))], name: fmt.Sprint("o-", rng.IntN(30))}
		tables := ix.work
		if k.kind == "" {
			tables = ix.pods
		}
		var r *record
		if rng.IntN(3) > 0 {
			r = &record{namespace: unique.Make(k.ns), name: k.name, uid: fmt.Sprint(rng.IntN(3)), budget: -1}
			if k.kind != "" {
				r.kind = unique.Make(groupKind{"g", k.kind})
			}
		}
		before := reported
		changed := !model[k].equal(r)
		ix.set(tables, unique.Make(k.ns), key{k.kind, k.name}, r)
		switch {
		case r == nil:
			delete(model, k)
		case changed: // an equal record leaves the one held
			model[k] = r
		}
		if (reported > before) != changed {
			t.Fatalf("step %d: reported %v, changed %v", step, reported > before, changed)
		}
		got := map[id]*record{}
		for _, tables := range []map[unique.Handle[string]]table{ix.pods, ix.work} {
			for ns, tb := range tables {
				if len(tb) == 0 || !slices.IsSortedFunc(tb, func(a, b *record) int { return compareKeys(a.key(), b.key()) }) {
					t.Fatalf("step %d: table of %s empty or unsorted", step, ns.Value())
				}
				for _, r := range tb {
					got[id{ns.Value(), r.key().kind, r.name}] = r
				}
			}
		}
		if !maps.Equal(got, model) {
			t.Fatalf("step %d: tables hold %d records, the model %d", step, len(got), len(model))
		}
	}
	pods, work := ix.Counts()
	n := 0
	for k := range model {
		if k.kind == "" {
			n++
		}
	}
	if pods != n || work != len(model)-n {
		t.Fatalf("counts %d, %d; model %d, %d", pods, work, n, len(model)-n)
	}
}
