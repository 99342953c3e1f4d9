package fleet

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/pullsecrets/pullsecrets/internal/testing/kubeletsim"
)

// A namespace that runs things: workloads whose templates list pull
// secrets and read Secrets, and their Pods, mostly Running, a few stuck on
// an image pull. There are no nodes and no workload controllers: the
// benchmark creates what the deployment, replicaset and statefulset
// controllers would (ReplicaSets and Pods, with their owner references and
// labels) and writes Pod status as the kubelet would. Every namespace has:
//
//	Deployment web     template reads Secret unrelated-0 (env); current
//	                   ReplicaSet with the web Pods, and one history
//	                   ReplicaSet at 0
//	Deployment admin   scaled to 0 (its ReplicaSet too); reads unrelated-0
//	Deployment worker  the stuck Pods: private images, no pull secret
//	Deployment cache   public images, reads no Secret: its Pods cost nothing
//	StatefulSet db     reads Secret unrelated-1 (volume)
//	CronJob report     reads Secret unrelated-2 (envFrom), no Job now
//
// and which of them lists the copy's first name (regcred) in its template
// depends on the namespace (holderOf): after a rename, that is what holds
// the old copy back.

// holder is what lists the copy's first name in a namespace, and so holds
// the old copy after a rename.
type holder int

const (
	// heldByPods: Deployment web's template lists it, so do its
	// ReplicaSet and its Pods.
	heldByPods holder = iota
	// heldByScaledToZero: Deployment admin, at 0 replicas, lists it; it
	// has no Pods but may get some.
	heldByScaledToZero
	// heldByCronJob: CronJob report lists it.
	heldByCronJob
	// heldByNothing: nothing lists it; the old copy is retired.
	heldByNothing
	holderKinds
)

func (h holder) String() string {
	return [...]string{"Deployment, ReplicaSet and Pods", "Deployment at 0 replicas", "CronJob", "nothing"}[h]
}

// holderOf is the holder of the fleet's i-th namespace: a quarter each.
func holderOf(i int) holder { return holder(i % int(holderKinds)) }

// podLayout is how a namespace's Pods are spread over its workloads.
type podLayout struct {
	web, db, cache, stuck int
}

// layout spreads pods over the workloads: stuck ones first, then half of
// the rest to web, up to 3 to db, the others to cache.
func layout(pods, stuck int) podLayout {
	l := podLayout{stuck: min(stuck, pods)}
	rest := pods - l.stuck
	l.web = (rest + 1) / 2
	rest -= l.web
	l.db = min(3, (rest+1)/2)
	l.cache = rest - l.db
	return l
}

// records is how many Pod and workload records the controller should keep
// for one namespace: Pods reading a Secret or stuck; workloads reading a
// Secret, and ReplicaSets and StatefulSets that may make Pods.
func (l podLayout) records() (pods, workloads int) {
	pods = l.web + l.db + l.stuck
	workloads = 2 + 1 + 1 // Deployments web and admin, StatefulSet db, CronJob report
	for _, n := range []int{l.web, l.stuck, l.cache} {
		if n > 0 {
			workloads++ // the ReplicaSet is not history
		}
	}
	return pods, workloads
}

// workloadObjects is how many workload objects a namespace holds.
const workloadObjects = 4 + 5 + 1 + 1 // Deployments, ReplicaSets, StatefulSet, CronJob

// Images: the private ones are on the source credential's registry.
const (
	webImage      = registry + "/shop/web:1.4.2"
	webOldImage   = registry + "/shop/web:1.4.1"
	envoyImage    = registry + "/shop/envoy:1.30.1"
	adminImage    = registry + "/shop/admin:0.9.0"
	workerImage   = registry + "/shop/worker:2.0.0"
	shipperImage  = registry + "/shop/log-shipper:0.9.3"
	reportImage   = registry + "/shop/report:3.1.0"
	redisImage    = "docker.io/library/redis:7.2.5"
	exporterImage = "docker.io/oliver006/redis_exporter:v1.62.0"
	pgImage       = "docker.io/library/postgres:16.4"
	pgExpImage    = "quay.io/prometheuscommunity/postgres-exporter:v0.15.0"
)

// suffix returns n characters of the alphabet Kubernetes uses in generated
// names, derived from the parts: names are the same in every run.
func suffix(n int, parts ...string) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	h := fnv.New64a()
	for _, p := range parts {
		_, _ = h.Write([]byte(p))
		_, _ = h.Write([]byte{0})
	}
	v := h.Sum64()
	out := make([]byte, n)
	for i := range out {
		out[i] = alphabet[v%uint64(len(alphabet))]
		v /= uint64(len(alphabet))
	}
	return string(out)
}

func pullSecrets(names ...string) []corev1.LocalObjectReference {
	var out []corev1.LocalObjectReference
	for _, n := range names {
		out = append(out, corev1.LocalObjectReference{Name: n})
	}
	return out
}

func container(name, image string, port int32, env []corev1.EnvVar, envFrom []corev1.EnvFromSource, mounts []corev1.VolumeMount) corev1.Container {
	c := corev1.Container{
		Name: name, Image: image, Env: env, EnvFrom: envFrom, VolumeMounts: mounts,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
		},
	}
	if port > 0 {
		portName := fmt.Sprintf("p-%d", port)
		c.Ports = []corev1.ContainerPort{{Name: portName, ContainerPort: port, Protocol: corev1.ProtocolTCP}}
		c.ReadinessProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString(portName)}},
			PeriodSeconds: 10,
		}
	}
	return c
}

func secretEnv(name, secret string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "payload",
	}}}
}

// template returns a workload's Pod template.
func template(app, sa string, pull []corev1.LocalObjectReference, containers ...corev1.Container) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{
			ServiceAccountName: sa, ImagePullSecrets: pull, Containers: containers,
			TerminationGracePeriodSeconds: ptr(int64(30)),
		},
	}
}

func ptr[T any](v T) *T { return &v }

// nsWorkloads is one namespace's workloads, as the benchmark creates them.
type nsWorkloads struct {
	ns     string
	holder holder
	layout podLayout
	// serviceAccounts in the namespace: Pods run as the first three.
	serviceAccounts int
}

// sa names the k-th ServiceAccount, or `default` when there are fewer.
func (w nsWorkloads) sa(k int) string {
	if k >= w.serviceAccounts {
		return "default"
	}
	return serviceAccountName(k)
}

func (w nsWorkloads) lists(h holder) []corev1.LocalObjectReference {
	if w.holder == h {
		return pullSecrets(secretName)
	}
	return nil
}

func (w nsWorkloads) webTemplate(image string) corev1.PodTemplateSpec {
	return template("web", "default", w.lists(heldByPods),
		container("web", image, 8080, []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}, secretEnv("DB_PASSWORD", "unrelated-0")}, nil, nil),
		container("envoy", envoyImage, 9901, nil, nil, nil))
}

func (w nsWorkloads) adminTemplate() corev1.PodTemplateSpec {
	return template("admin", "default", w.lists(heldByScaledToZero),
		container("admin", adminImage, 8080, []corev1.EnvVar{secretEnv("ADMIN_TOKEN", "unrelated-0")}, nil, nil),
		container("envoy", envoyImage, 9901, nil, nil, nil))
}

func (w nsWorkloads) workerTemplate() corev1.PodTemplateSpec {
	return template("worker", w.sa(1), nil,
		container("worker", workerImage, 0, []corev1.EnvVar{{Name: "QUEUE", Value: "orders"}}, nil, nil),
		container("log-shipper", shipperImage, 0, nil, nil, nil))
}

func (w nsWorkloads) cacheTemplate() corev1.PodTemplateSpec {
	return template("cache", "default", nil,
		container("redis", redisImage, 6379, nil, nil, nil),
		container("exporter", exporterImage, 9121, nil, nil, nil))
}

func (w nsWorkloads) dbTemplate() corev1.PodTemplateSpec {
	t := template("db", w.sa(2), nil,
		container("postgres", pgImage, 5432, nil, nil, []corev1.VolumeMount{{Name: "credentials", MountPath: "/etc/db", ReadOnly: true}}),
		container("exporter", pgExpImage, 9187, nil, nil, nil))
	t.Spec.Volumes = []corev1.Volume{{Name: "credentials", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "unrelated-1"}}}}
	return t
}

func (w nsWorkloads) reportTemplate() corev1.PodTemplateSpec {
	t := template("report", "default", w.lists(heldByCronJob),
		container("report", reportImage, 0, nil, []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "unrelated-2"}}}}, nil),
		container("uploader", shipperImage, 0, nil, nil, nil))
	t.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	return t
}

func controllerRef(kind string, obj metav1.Object) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: "apps/v1", Kind: kind, Name: obj.GetName(), UID: obj.GetUID(),
		Controller: ptr(true), BlockOwnerDeletion: ptr(true),
	}
}

// created is a Pod to create, with the status the kubelet would give it.
type podToCreate struct {
	pod   *corev1.Pod
	stuck int // 0: Running; 1: ErrImagePull; 2: ImagePullBackOff
}

// create creates the namespace's workloads and Pods, and sets the Pods'
// status.
func (w nsWorkloads) create(ctx context.Context, c kubernetes.Interface, started time.Time) error {
	var pods []podToCreate
	deploy := func(name string, replicas int, tmpl corev1.PodTemplateSpec, history *corev1.PodTemplateSpec) error {
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: name, Labels: map[string]string{"app": name}},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr(int32(replicas)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}, Template: tmpl,
			},
		}
		d, err := c.AppsV1().Deployments(w.ns).Create(ctx, d, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create Deployment %s/%s: %w", w.ns, name, err)
		}
		rs := func(t corev1.PodTemplateSpec, replicas int, revision string) (*appsv1.ReplicaSet, error) {
			hash := suffix(10, w.ns, name, revision)
			t = *t.DeepCopy()
			t.Labels["pod-template-hash"] = hash
			r := &appsv1.ReplicaSet{
				ObjectMeta: metav1.ObjectMeta{
					Namespace: w.ns, Name: name + "-" + hash, Labels: t.Labels,
					Annotations:     map[string]string{"deployment.kubernetes.io/revision": revision},
					OwnerReferences: []metav1.OwnerReference{controllerRef("Deployment", d)},
				},
				Spec: appsv1.ReplicaSetSpec{
					Replicas: ptr(int32(replicas)),
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name, "pod-template-hash": hash}},
					Template: t,
				},
			}
			out, err := c.AppsV1().ReplicaSets(w.ns).Create(ctx, r, metav1.CreateOptions{})
			if err != nil {
				return nil, fmt.Errorf("create ReplicaSet %s/%s: %w", w.ns, r.Name, err)
			}
			return out, nil
		}
		if history != nil {
			if _, err := rs(*history, 0, "1"); err != nil {
				return err
			}
		}
		current, err := rs(tmpl, replicas, "2")
		if err != nil {
			return err
		}
		for j := range replicas {
			p := podFrom(w.ns, current.Name+"-"+suffix(5, current.Name, fmt.Sprint(j)), current.Spec.Template, controllerRef("ReplicaSet", current))
			stuck := 0
			if name == "worker" {
				stuck = 1 + min(j, 1)
			}
			pods = append(pods, podToCreate{pod: p, stuck: stuck})
		}
		return nil
	}
	old := w.webTemplate(webOldImage)
	if err := deploy("web", w.layout.web, w.webTemplate(webImage), &old); err != nil {
		return err
	}
	if err := deploy("admin", 0, w.adminTemplate(), nil); err != nil {
		return err
	}
	if err := deploy("worker", w.layout.stuck, w.workerTemplate(), nil); err != nil {
		return err
	}
	if err := deploy("cache", w.layout.cache, w.cacheTemplate(), nil); err != nil {
		return err
	}

	dbt := w.dbTemplate()
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: "db", Labels: map[string]string{"app": "db"}},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr(int32(w.layout.db)), ServiceName: "db",
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, Template: dbt,
		},
	}
	sts, err := c.AppsV1().StatefulSets(w.ns).Create(ctx, sts, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create StatefulSet %s/db: %w", w.ns, err)
	}
	revision := "db-" + suffix(10, w.ns, "db")
	for j := range w.layout.db {
		t := *dbt.DeepCopy()
		name := fmt.Sprintf("db-%d", j)
		t.Labels["controller-revision-hash"] = revision
		t.Labels["statefulset.kubernetes.io/pod-name"] = name
		t.Labels["apps.kubernetes.io/pod-index"] = fmt.Sprint(j)
		p := podFrom(w.ns, name, t, controllerRef("StatefulSet", sts))
		p.Spec.Hostname, p.Spec.Subdomain = name, "db"
		pods = append(pods, podToCreate{pod: p})
	}

	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: "report", Labels: map[string]string{"app": "report"}},
		Spec: batchv1.CronJobSpec{
			Schedule:    "0 3 * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: w.reportTemplate()}},
		},
	}
	if _, err := c.BatchV1().CronJobs(w.ns).Create(ctx, cj, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create CronJob %s/report: %w", w.ns, err)
	}

	for i, p := range pods {
		node := fmt.Sprintf("node-%03d", fnvMod(p.pod.Namespace+"/"+p.pod.Name, 200))
		p.pod.Spec.NodeName = node
		created, err := c.CoreV1().Pods(w.ns).Create(ctx, p.pod, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create Pod %s/%s: %w", w.ns, p.pod.Name, err)
		}
		if p.stuck > 0 {
			created.Status = stuckStatus(created, p.stuck == 2, started)
		} else {
			created.Status = runningStatus(created, i, started)
		}
		if _, err := c.CoreV1().Pods(w.ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update status of Pod %s/%s: %w", w.ns, created.Name, err)
		}
	}
	return nil
}

func fnvMod(s string, n uint32) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return h.Sum32() % n
}

func podFrom(ns, name string, t corev1.PodTemplateSpec, owner metav1.OwnerReference) *corev1.Pod {
	t = *t.DeepCopy()
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: t.Labels, Annotations: t.Annotations, OwnerReferences: []metav1.OwnerReference{owner}},
		Spec:       t.Spec,
	}
}

func digest(parts ...string) string {
	var b strings.Builder
	for i := range 4 {
		fmt.Fprintf(&b, "%016x", fnvHash64(append(parts, fmt.Sprint(i))...))
	}
	return b.String()
}

func fnvHash64(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		_, _ = h.Write([]byte(p))
		_, _ = h.Write([]byte{0})
	}
	return h.Sum64()
}

func podIPs(pod *corev1.Pod, i int) (host, ip string) {
	n := fnvMod(pod.Spec.NodeName, 200)
	return fmt.Sprintf("10.0.%d.%d", n/250, 10+n%240), fmt.Sprintf("10.244.%d.%d", n, 2+i%250)
}

// runningStatus is what the kubelet reports of a Pod whose containers run.
func runningStatus(pod *corev1.Pod, i int, started time.Time) corev1.PodStatus {
	at := metav1.NewTime(started.Truncate(time.Second))
	host, ip := podIPs(pod, i)
	s := corev1.PodStatus{
		Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue, LastTransitionTime: at},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: at},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: at},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: at},
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: at},
		},
		HostIP: host, HostIPs: []corev1.HostIP{{IP: host}}, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
		StartTime: &at, QOSClass: pod.Status.QOSClass,
	}
	for _, c := range pod.Spec.Containers {
		repo, _, _ := strings.Cut(c.Image, ":")
		s.ContainerStatuses = append(s.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: repo + "@sha256:" + digest(c.Image),
			ContainerID: "containerd://" + digest(pod.Namespace, pod.Name, c.Name),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at}},
			Ready:       true, Started: ptr(true),
		})
	}
	return s
}

// stuckStatus is what the kubelet reports of a Pod whose pulls fail for
// lack of credentials: the texts of package kubeletsim (its Events are not
// written: the controller does not read them).
func stuckStatus(pod *corev1.Pod, backOff bool, started time.Time) corev1.PodStatus {
	at := metav1.NewTime(started.Truncate(time.Second))
	host, _ := podIPs(pod, 0)
	s := corev1.PodStatus{
		Phase: corev1.PodPending,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: at},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: at},
			{Type: corev1.ContainersReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", LastTransitionTime: at},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", LastTransitionTime: at},
		},
		HostIP: host, HostIPs: []corev1.HostIP{{IP: host}}, StartTime: &at, QOSClass: pod.Status.QOSClass,
	}
	for _, c := range pod.Spec.Containers {
		msg := kubeletsim.PullError(kubeletsim.Unauthorized, c.Image)
		waiting := &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: msg}
		if backOff {
			waiting = &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: fmt.Sprintf("Back-off pulling image %q: ErrImagePull: %s", c.Image, msg)}
		}
		s.ContainerStatuses = append(s.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, State: corev1.ContainerState{Waiting: waiting}})
	}
	return s
}

// releaseHolders does, in one namespace, what a team does after a rename:
// templates list the new name (a merge patch: a strategic one would add it
// beside the old one), and Pods listing the old one are replaced (here:
// deleted, without waiting for a kubelet, and their ReplicaSet scaled to 0
// as a rollout leaves it). It returns how many objects it changed.
func (w nsWorkloads) releaseHolders(ctx context.Context, c kubernetes.Interface) (int, error) {
	newList := []byte(fmt.Sprintf(`{"spec":{"template":{"spec":{"imagePullSecrets":[{"name":%q}]}}}}`, renamedSecret))
	switch w.holder {
	case heldByPods:
		rsName := "web-" + suffix(10, w.ns, "web", "2")
		if _, err := c.AppsV1().Deployments(w.ns).Patch(ctx, "web", types.MergePatchType, newList, metav1.PatchOptions{}); err != nil {
			return 0, fmt.Errorf("patch Deployment %s/web: %w", w.ns, err)
		}
		if _, err := c.AppsV1().ReplicaSets(w.ns).Patch(ctx, rsName, types.MergePatchType, []byte(`{"spec":{"replicas":0}}`), metav1.PatchOptions{}); err != nil {
			return 0, fmt.Errorf("scale ReplicaSet %s/%s to 0: %w", w.ns, rsName, err)
		}
		for j := range w.layout.web {
			name := rsName + "-" + suffix(5, rsName, fmt.Sprint(j))
			if err := c.CoreV1().Pods(w.ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}); err != nil {
				return 0, fmt.Errorf("delete Pod %s/%s: %w", w.ns, name, err)
			}
		}
		return 2 + w.layout.web, nil
	case heldByScaledToZero:
		if _, err := c.AppsV1().Deployments(w.ns).Patch(ctx, "admin", types.MergePatchType, newList, metav1.PatchOptions{}); err != nil {
			return 0, fmt.Errorf("patch Deployment %s/admin: %w", w.ns, err)
		}
		return 1, nil
	case heldByCronJob:
		p := []byte(fmt.Sprintf(`{"spec":{"jobTemplate":{"spec":{"template":{"spec":{"imagePullSecrets":[{"name":%q}]}}}}}}`, renamedSecret))
		if _, err := c.BatchV1().CronJobs(w.ns).Patch(ctx, "report", types.MergePatchType, p, metav1.PatchOptions{}); err != nil {
			return 0, fmt.Errorf("patch CronJob %s/report: %w", w.ns, err)
		}
		return 1, nil
	}
	return 0, nil
}
