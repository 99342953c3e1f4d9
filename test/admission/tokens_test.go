package admission

import (
	"context"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
	"github.com/pullsecrets/pullsecrets/test/internal/deploytest"
)

// tokenCase is a TokenRequest of the controller, or of ops, for a
// ServiceAccount of the controller's namespace.
type tokenCase struct {
	name      string
	as        string
	audiences []string
	seconds   int64
	denied    bool
}

// tokenRequester makes TokenRequests as an actor.
func (e *env) tokenRequester(t *testing.T, as string) kubernetes.Interface {
	t.Helper()
	users := map[string]string{"controller": e.controllerUser(), "ops": "ops"}
	cs, err := kubernetes.NewForConfig(deploytest.Impersonate(e.config, users[as]))
	must(t, err, "clientset")
	return cs
}

func (e *env) requestToken(ctx context.Context, cs kubernetes.Interface, audiences []string, seconds int64, dry bool) error {
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: audiences}}
	if seconds > 0 {
		tr.Spec.ExpirationSeconds = &seconds
	}
	opts := metav1.CreateOptions{}
	if dry {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err := cs.CoreV1().ServiceAccounts(e.namespace).CreateToken(ctx, "pullsecrets-controller", tr, opts)
	return err
}

// setTokenAudiences writes the admin's list of audiences and waits until
// the policy sees it: a request for probe is then allowed (or, with an
// empty list, denied).
func (e *env) setTokenAudiences(t *testing.T, audiences ...string) {
	t.Helper()
	ctx := testcluster.Context(t)
	var cm corev1.ConfigMap
	must(t, e.admin.Get(ctx, types.NamespacedName{Namespace: e.namespace, Name: "pullsecrets-credential-providers"}, &cm), "get the ConfigMap")
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data["token-audiences"] = strings.Join(audiences, "\n") + "\n"
	must(t, e.admin.Update(ctx, &cm), "update the ConfigMap")
	cs := e.tokenRequester(t, "controller")
	probe := []string{"probe.example.com"}
	if len(audiences) > 0 {
		probe = audiences[:1]
	}
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		last = e.requestToken(ctx, cs, probe, 600, true)
		return (last == nil) == (len(audiences) > 0), nil
	})
	if err != nil {
		t.Fatalf("the policy never saw token-audiences %v; last answer: %v", audiences, last)
	}
}

// runTokenCases proves the bounds on the controller's token requests: its
// own ServiceAccount only (RBAC), the admin's audiences only, at most an
// hour; as a dry run and for real.
func (e *env) runTokenCases(t *testing.T) {
	e.setTokenAudiences(t, "sts.amazonaws.com", "sts.example.com")
	cases := []tokenCase{
		{name: "an allowed audience, 10 minutes", as: "controller", audiences: []string{"sts.amazonaws.com"}, seconds: 600},
		{name: "two allowed audiences, one hour", as: "controller", audiences: []string{"sts.amazonaws.com", "sts.example.com"}, seconds: 3600},
		{name: "the API server's audience, by default", as: "controller", seconds: 600, denied: true},
		{name: "the API server's audience, by name", as: "controller", audiences: []string{"https://kubernetes.default.svc.cluster.local"}, seconds: 600, denied: true},
		{name: "an allowed and another audience", as: "controller", audiences: []string{"sts.amazonaws.com", "attacker.example.com"}, seconds: 600, denied: true},
		{name: "a year-long token", as: "controller", audiences: []string{"sts.amazonaws.com"}, seconds: 8760 * 3600, denied: true},
		{name: "an hour and a second", as: "controller", audiences: []string{"sts.amazonaws.com"}, seconds: 3601, denied: true},
		{name: "the default lifetime (one hour)", as: "controller", audiences: []string{"sts.amazonaws.com"}},
		{name: "ops, any audience: not the controller's request", as: "ops", audiences: []string{"anything.example.com"}, seconds: 8760 * 3600},
	}
	for _, tc := range cases {
		for _, dry := range []bool{true, false} {
			mode := map[bool]string{true: "dry-run", false: "real"}[dry]
			t.Run("token: "+tc.name+"/"+mode, func(t *testing.T) {
				err := e.requestToken(testcluster.Context(t), e.tokenRequester(t, tc.as), tc.audiences, tc.seconds, dry)
				switch {
				case !tc.denied && err != nil:
					t.Fatalf("want allowed, got: %v", err)
				case tc.denied && !e.deniedBy(err, "controller-tokens"):
					t.Fatalf("want denied by %spullsecrets-controller-tokens, got: %v", e.prefix, err)
				}
			})
		}
	}
	t.Run("token: no audience listed denies every request", func(t *testing.T) {
		e.setTokenAudiences(t)
		err := e.requestToken(testcluster.Context(t), e.tokenRequester(t, "controller"), []string{"sts.amazonaws.com"}, 600, false)
		if !e.deniedBy(err, "controller-tokens") || !strings.Contains(err.Error(), "(none)") {
			t.Fatalf("want denied by the policy, saying none is allowed; got %v", err)
		}
	})
	t.Run("token: without the ConfigMap every request is denied", func(t *testing.T) {
		ctx := testcluster.Context(t)
		var cm corev1.ConfigMap
		must(t, e.admin.Get(ctx, types.NamespacedName{Namespace: e.namespace, Name: "pullsecrets-credential-providers"}, &cm), "get the ConfigMap")
		must(t, e.admin.Delete(ctx, &cm), "delete the ConfigMap")
		t.Cleanup(func() {
			cm.ResourceVersion = ""
			_ = e.admin.Create(context.Background(), &cm)
		})
		cs := e.tokenRequester(t, "controller")
		var last error
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			last = e.requestToken(ctx, cs, []string{"sts.amazonaws.com"}, 600, false)
			return last != nil, nil
		})
		if err != nil || !strings.Contains(last.Error(), "pullsecrets-controller-tokens") {
			t.Fatalf("want denied by the policy without its params; got %v", last)
		}
	})
}
