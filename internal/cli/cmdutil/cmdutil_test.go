package cmdutil

import (
	"bytes"
	"testing"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestParseName(t *testing.T) {
	t.Parallel()
	cmd := &cobra.Command{Use: "doctor"}
	for _, tc := range []struct {
		arg, kind, want string
		usage           bool
	}{
		{"web", "Pod", "web", false},
		{"pod/web", "Pod", "web", false},
		{"pods/web", "Pod", "web", false},
		{"po/web", "Pod", "web", false},
		{"Pod/web", "Pod", "web", false},
		{"secret/regcred", "Secret", "regcred", false},
		{"sa/builder", "ServiceAccount", "builder", false},
		{"serviceaccounts/builder", "ServiceAccount", "builder", false},
		{"deployment/web", "Pod", "", true},
		{"pod/", "Pod", "", true},
		{"Bad_Name", "Pod", "", true},
		{"a/b/c", "Pod", "", true},
	} {
		got, err := ParseName(cmd, tc.arg, tc.kind)
		if tc.usage {
			if ExitCode(err) != ExitUsage {
				t.Errorf("%s: %q, %v; want a usage error", tc.arg, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.arg, got, err, tc.want)
		}
	}
}

func TestSystemNamespacesNamedBySelector(t *testing.T) {
	t.Parallel()
	for sel, want := range map[string]bool{
		"kubernetes.io/metadata.name=kube-system":         true,
		"kubernetes.io/metadata.name in (kube-system, x)": true,
		"kubernetes.io/metadata.name!=kube-public":        false,
		"team=shop": false,
	} {
		parsed, err := labels.Parse(sel)
		if err != nil {
			t.Fatal(err)
		}
		s := &Scope{NamespaceSelector: sel, namespaces: parsed}
		if got := s.namesNamespace("kube-system"); got != want {
			t.Errorf("%s: names kube-system = %v, want %v", sel, got, want)
		}
	}
}

func TestOutput(t *testing.T) {
	t.Parallel()
	cmd := &cobra.Command{Use: "status"}
	o := NewOutput(true, "text")
	o.AddFlags(cmd)
	for format, want := range map[string]int{"": ExitOK, "wide": ExitOK, "text": ExitOK, "name": ExitOK, "json": ExitOK, "yaml": ExitOK,
		"jsonpath={.kind}": ExitOK, "go-template={{.kind}}": ExitOK, "bogus": ExitUsage} {
		*o.Print.OutputFormat = format
		if got := ExitCode(o.Validate(cmd)); got != want {
			t.Errorf("-o %q: exit %d, want %d", format, got, want)
		}
	}

	var out bytes.Buffer
	*o.Print.OutputFormat = "json"
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "regcred", Namespace: "shop",
		Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: "{...data...}"}}, Data: map[string][]byte{"k": []byte("s3cret")}}
	if err := o.PrintWritten([]runtime.Object{secret}, &out); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out.Bytes(), []byte("s3cret")) || bytes.Contains(out.Bytes(), []byte(`"data"`)) || !bytes.Contains(out.Bytes(), []byte(`"kind": "Secret"`)) {
		t.Errorf("a Secret written prints without its data:\n%s", out.String())
	}
	if secret.Data == nil {
		t.Error("PrintWritten changed the object it was given")
	}
	out.Reset()
	*o.Print.OutputFormat = "name"
	if err := o.PrintWritten([]runtime.Object{secret}, &out); err != nil || out.String() != "secret/regcred\n" {
		t.Errorf("-o name: %q, %v", out.String(), err)
	}
}
