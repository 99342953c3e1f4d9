package fleet

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pullsecrets/pullsecrets/internal/pullfailure"
	"github.com/pullsecrets/pullsecrets/internal/usage"
)

func TestLayoutSpreadsEveryPod(t *testing.T) {
	cases := []struct {
		pods, stuck int
		want        podLayout
		records     [2]int
	}{
		{20, 2, podLayout{web: 9, db: 3, cache: 6, stuck: 2}, [2]int{14, 7}},
		{5, 1, podLayout{web: 2, db: 1, cache: 1, stuck: 1}, [2]int{4, 7}},
		{1, 5, podLayout{stuck: 1}, [2]int{1, 5}},
		{0, 0, podLayout{}, [2]int{0, 4}},
	}
	for _, c := range cases {
		l := layout(c.pods, c.stuck)
		if l != c.want {
			t.Errorf("layout(%d, %d) = %+v, want %+v", c.pods, c.stuck, l, c.want)
		}
		if got := l.web + l.db + l.cache + l.stuck; got != c.pods {
			t.Errorf("layout(%d, %d) places %d Pods", c.pods, c.stuck, got)
		}
		if p, w := l.records(); p != c.records[0] || w != c.records[1] {
			t.Errorf("layout(%d, %d).records() = %d, %d, want %v", c.pods, c.stuck, p, w, c.records)
		}
	}
}

func TestHoldersAreAQuarterEach(t *testing.T) {
	counts := map[holder]int{}
	for i := range 1000 {
		counts[holderOf(i)]++
	}
	for h := range holderKinds {
		if counts[h] != 250 {
			t.Errorf("%s: %d of 1000 namespaces", h, counts[h])
		}
	}
}

func TestSuffixIsStableAndKubernetesLike(t *testing.T) {
	a, b := suffix(10, "fleet-00001", "web", "2"), suffix(10, "fleet-00001", "web", "2")
	if a != b || len(a) != 10 || strings.Trim(a, "bcdfghjklmnpqrstvwxz2456789") != "" {
		t.Errorf("suffix: %q, %q", a, b)
	}
	if a == suffix(10, "fleet-00001", "web", "1") {
		t.Error("two revisions share a hash")
	}
}

// The model's Pods are what the controller's records say they are: the
// web and db Pods read a Secret, the cache Pods none, the worker Pods are
// stuck on images of the credential's registry.
func TestModelPodsMatchTheirRecords(t *testing.T) {
	w := nsWorkloads{ns: "fleet-00000", holder: heldByPods, layout: layout(20, 2), serviceAccounts: 3}
	started := time.Unix(1_800_000_000, 0)
	pod := func(tmpl corev1.PodTemplateSpec) *corev1.Pod {
		return podFrom(w.ns, "p", tmpl, metav1.OwnerReference{})
	}
	web := pod(w.webTemplate(webImage))
	if got := usage.SecretRefs(&web.Spec); strings.Join(got, ",") != "regcred,unrelated-0" {
		t.Errorf("web Pod reads %v", got)
	}
	if got := usage.SecretRefs(&pod(w.cacheTemplate()).Spec); len(got) != 0 {
		t.Errorf("cache Pod reads %v", got)
	}
	if got := usage.SecretRefs(&pod(w.dbTemplate()).Spec); strings.Join(got, ",") != "unrelated-1" {
		t.Errorf("db Pod reads %v", got)
	}
	worker := pod(w.workerTemplate())
	worker.Status = stuckStatus(worker, true, started)
	stuck := pullfailure.StuckContainers(worker)
	if len(stuck) != 2 || !strings.HasPrefix(stuck[0].Image, registry+"/") || stuck[1].Reason != pullfailure.ReasonImagePullBackOff {
		t.Errorf("worker Pod stuck on %+v", stuck)
	}
	web.Status = runningStatus(web, 0, started)
	if web.Status.Phase != corev1.PodRunning || len(pullfailure.StuckContainers(web)) != 0 || len(web.Status.ContainerStatuses) != 2 {
		t.Errorf("web Pod status %+v", web.Status)
	}
	other := nsWorkloads{ns: "fleet-00003", holder: heldByNothing, layout: layout(20, 2), serviceAccounts: 3}
	for _, tmpl := range []corev1.PodTemplateSpec{other.webTemplate(webImage), other.adminTemplate(), other.reportTemplate()} {
		if len(tmpl.Spec.ImagePullSecrets) != 0 {
			t.Errorf("template %s lists %v where nothing should", tmpl.Labels["app"], tmpl.Spec.ImagePullSecrets)
		}
	}
}

func TestParseMemStats(t *testing.T) {
	text := "heap profile: 1: 2 [3: 4] @ heap/1048576\n\n# runtime.MemStats\n# Alloc = 100\n# TotalAlloc = 900\n# Sys = 5000\n" +
		"# HeapAlloc = 100\n# HeapSys = 4000\n# HeapIdle = 3000\n# HeapInuse = 1000\n# HeapReleased = 2000\n# HeapObjects = 7\n# NumGC = 12\n"
	h, err := parseMemStats(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := HeapStats{HeapAlloc: 100, HeapInuse: 1000, HeapSys: 4000, HeapReleased: 2000, Sys: 5000, HeapObjects: 7, NumGC: 12}
	if h != want {
		t.Errorf("got %+v, want %+v", h, want)
	}
	if _, err := parseMemStats(strings.NewReader("# HeapAlloc = 1\n")); err == nil {
		t.Error("no error for a profile without MemStats")
	}
}

func TestFloorRunsKeepsItsOwnPrefix(t *testing.T) {
	r := &Result{Phases: []Phase{
		{Name: "floor-bare-1", GoalSeconds: 1}, {Name: "floor-bare-2", GoalSeconds: 2}, {Name: "floor-1", GoalSeconds: 3}, {Name: "cold"},
	}}
	if got := r.floorRuns("floor"); got != "3.00" {
		t.Errorf("floor: %q", got)
	}
	if got := r.floorRuns("floor-bare"); got != "1.00, 2.00" {
		t.Errorf("floor-bare: %q", got)
	}
}
