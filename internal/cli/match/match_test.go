package match_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/pullsecrets/pullsecrets/internal/testing/clitest"
	"github.com/pullsecrets/pullsecrets/internal/testing/registrytest"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

func TestMain(m *testing.M) {
	registrytest.QuietLogs()
	testcluster.Main(m, testcluster.Options{})
}

// secretFile is a path under testdata/secrets, as given on the command
// line and shown in the output.
func secretFile(name string) string { return filepath.Join("testdata", "secrets", name) }

// run runs a command line and fails the test when its output holds a
// secret value of the test data: every test of the package is a leak
// test.
func run(t *testing.T, kubeconfig string, args ...string) clitest.Result {
	t.Helper()
	res := clitest.Run(t, kubeconfig, "", args...)
	for _, secret := range forbiddenValues(t) {
		if strings.Contains(res.Stdout, secret) || strings.Contains(res.Stderr, secret) {
			t.Fatalf("the output of %v holds the secret value %q:\n%s%s", args, secret, res.Stdout, res.Stderr)
		}
	}
	return res
}

// forbidden returns the secret values of the test data: secretMarker,
// which every password and token holds, and the base64 text (data
// values, auth) that holds one.
func forbiddenValues(t *testing.T) []string {
	t.Helper()
	values, err := forbidden()
	if err != nil {
		t.Fatal(err)
	}
	return values
}

var forbidden = sync.OnceValues(func() ([]string, error) {
	values := []string{secretMarker}
	for _, dir := range []string{"secrets", "bad"} {
		paths, err := filepath.Glob(filepath.Join("testdata", dir, "*"))
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			values = append(values, secretBase64(string(data))...)
		}
	}
	return values, nil
})

// TestGolden runs the file forms, text and JSON, against the golden files
// testdata/golden/<case>.{txt,json}. Rewrite them with -update.
func TestGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		code int
	}{
		{
			name: "all-match",
			args: []string{"nginx", "ghcr.io/acme/app:1.4", "quay.io/coreos/etcd:v3.6", "localhost/app",
				"--secret-file", secretFile("list.json"), "--secret-file", secretFile("regcred.yaml")},
			code: 0,
		},
		{
			name: "misses",
			args: []string{"reg.example.com/app", "ghcr.io/other/app", "quay.io/app", "Ghcr.io/acme/app", "gcr.io/project/app",
				"--secret-file", secretFile("regcred.yaml"), "--secret-file", secretFile("list.json")},
			code: 1,
		},
		{
			name: "keyring-fails",
			args: []string{"nginx", "other.example.com/app", "--secret-file", secretFile("regcred.yaml"), "--secret-file", secretFile("broken.yaml")},
			code: 1,
		},
		{
			name: "findings",
			args: []string{"nginx", "ghcr.io/acme/app", "europe-docker.pkg.dev/p/r/app", "--secret-file", secretFile("warnings.yaml")},
			code: 1,
		},
		{
			name: "namespace-flag",
			args: []string{"-n", "team-b", "nginx", "--secret-file", secretFile("regcred.yaml")},
			code: 0,
		},
		{
			name: "no-keys",
			args: []string{"nginx", "--secret-file", secretFile("opaque.yaml")},
			code: 1,
		},
	}
	for _, tt := range tests {
		for _, format := range []string{"txt", "json"} {
			t.Run(tt.name+"."+format, func(t *testing.T) {
				t.Parallel()
				args := tt.args
				if format == "json" {
					args = append(append([]string{}, args...), "-o", "json")
				}
				res := run(t, "", append([]string{"match"}, args...)...)
				if res.Code != tt.code {
					t.Errorf("exit status %d, want %d; stderr: %s", res.Code, tt.code, res.Stderr)
				}
				// The text's summary line goes to stderr; JSON has none.
				summary := regexp.MustCompile(`^\d+ of \d+ images? without a credential; \d+ errors?, \d+ warnings?\.\n$`)
				if (format == "json" && res.Stderr != "") || (format == "txt" && !summary.MatchString(res.Stderr)) {
					t.Errorf("stderr: %q", res.Stderr)
				}
				clitest.Golden(t, filepath.Join("testdata", "golden", tt.name+"."+format), res.Stdout)
			})
		}
	}
}

// TestJSONContract pins the -o json shape scripts depend on.
func TestJSONContract(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)

	res := run(t, "", "match", "quay.io/coreos/etcd", "gcr.io/p/app", "--secret-file", secretFile("list.json"), "--secret-file", secretFile("opaque.yaml"), "-o", "json")

	g.Expect(res.Code).To(Equal(1), res.Stderr)
	g.Expect(res.Stdout).To(Equal(`{
    "kind": "MatchReport",
    "apiVersion": "cli.pullsecrets.dev/v1alpha1",
    "images": [
        {
            "image": "quay.io/coreos/etcd",
            "credentials": [
                {
                    "secret": "team-a/quay-path",
                    "registry": "quay.io/coreos",
                    "username": "coreos-robot"
                },
                {
                    "secret": "team-a/quay-host",
                    "registry": "quay.io",
                    "username": "quay-robot"
                }
            ]
        },
        {
            "image": "gcr.io/p/app",
            "credentials": []
        }
    ],
    "findings": [
        {
            "secret": "default/opaque",
            "severity": "error",
            "code": "WrongType",
            "message": "Secret has no type (the API server makes it Opaque): the kubelet reads pull credentials only from types kubernetes.io/dockerconfigjson and kubernetes.io/dockercfg, and ignores it; its .dockerconfigjson needs type kubernetes.io/dockerconfigjson"
        }
    ]
}
`))

	failed := run(t, "", "match", "nginx", "--secret-file", secretFile("broken.yaml"), "-o", "json")
	g.Expect(failed.Code).To(Equal(1))
	g.Expect(failed.Stdout).To(HavePrefix(`{
    "kind": "MatchReport",
    "apiVersion": "cli.pullsecrets.dev/v1alpha1",
    "error": "pull secret team-a/broken: .dockerconfigjson: entry \"other.example.com\": auth is not valid padded (it ends in '=') base64 (illegal data at byte 24); the kubelet fails every image pull of the Pod",
    "images": [
        {
            "image": "nginx",
            "credentials": []
        }
    ],`))

	// The same report through the other printers of the contract.
	yml := run(t, "", "match", "quay.io/coreos/etcd", "--secret-file", secretFile("list.json"), "-o", "yaml")
	g.Expect(yml.Code).To(Equal(0), yml.Stderr)
	g.Expect(yml.Stdout).To(HavePrefix("apiVersion: cli.pullsecrets.dev/v1alpha1\nfindings: []\nimages:\n- credentials:\n  - registry: quay.io/coreos\n    secret: team-a/quay-path\n"))
	jp := run(t, "", "match", "quay.io/coreos/etcd", "--secret-file", secretFile("list.json"), "-o", "jsonpath={.images[0].credentials[*].secret}")
	g.Expect(jp.Stdout).To(Equal("team-a/quay-path team-a/quay-host"))
	names := run(t, "", "match", "quay.io/coreos/etcd", "gcr.io/p/app", "--secret-file", secretFile("list.json"), "-o", "name")
	g.Expect(names.Stdout).To(Equal("secret/quay-path\nsecret/quay-host\n"), "the pull secrets that give an image a credential, in the kubelet's order")
}

// TestBadFiles: a file that cannot be read is an error naming the file,
// the line and the document, and quoting nothing of it.
func TestBadFiles(t *testing.T) {
	t.Parallel()
	bad := func(name string) string { return filepath.Join("testdata", "bad", name) }
	tests := []struct{ file, want string }{
		{bad("bad-yaml.yaml"), "error: secret file testdata/bad/bad-yaml.yaml:13 (document 2): invalid YAML: did not find expected ',' or '}'\n"},
		{bad("bad-base64.yaml"), "error: secret file testdata/bad/bad-base64.yaml:1 (document 1): Secret default/regcred: data \".dockerconfigjson\" is not valid base64 (illegal base64 data at input byte 7)\n"},
		{bad("bad-json.json"), "error: secret file testdata/bad/bad-json.json:6 (document 1): invalid JSON\n"},
		{bad("no-name.yaml"), "error: secret file testdata/bad/no-name.yaml:1 (document 1): item 1: Secret without metadata.name\n"},
		{bad("no-secret.yaml"), "error: secret file testdata/bad/no-secret.yaml holds no Secret\n"},
		{bad("not-object.yaml"), "error: secret file testdata/bad/not-object.yaml:1 (document 1): not a Kubernetes object (no kind)\n"},
		{bad("separator.yaml"), "error: secret file testdata/bad/separator.yaml: document 1: invalid YAML: a document separator (---) followed by text\n"},
		{bad("type-error.yaml"), "error: secret file testdata/bad/type-error.yaml:1 (document 1): Secret: data is a JSON array, want string\n"},
		{bad("bad-name.yaml"), `error: secret file testdata/bad/bad-name.yaml:1 (document 1): Secret name "Reg\x1b[31mcred": a lowercase RFC 1123 subdomain`},
		{bad("missing.yaml"), "error: read secret file: open testdata/bad/missing.yaml: no such file or directory\n"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			res := run(t, "", "match", "nginx", "--secret-file", secretFile("regcred.yaml"), "--secret-file", tt.file)
			g.Expect(res.Code).To(Equal(1))
			g.Expect(res.Stdout).To(BeEmpty())
			g.Expect(res.Stderr).To(HavePrefix(tt.want))
		})
	}
}

// TestFileLimits: a secret file over 8 MiB, and secret files over 64 MiB
// together, are errors naming the files and the limit; nothing is parsed.
func TestFileLimits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sparse := func(name string, size int64) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		return p
	}
	big := sparse("big.yaml", 8<<20+1)
	args := []string{"match", "nginx", "--secret-file", secretFile("regcred.yaml")}
	var full []string
	for i := range 8 {
		p := sparse(fmt.Sprintf("full-%d.yaml", i), 8<<20)
		args, full = append(args, "--secret-file", p), append(full, p)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"one file", []string{"match", "nginx", "--secret-file", secretFile("regcred.yaml"), "--secret-file", big},
			"error: secret file " + big + ": not read: it is 8.1 MiB, over the 8 MiB limit for one file\n"},
		{"all files", args,
			"error: secret files " + secretFile("regcred.yaml") + " " + strings.Join(full, " ") + ": not read: the 9 files come to 64.1 MiB, more than 64 MiB, the limit for all the files of one command; name fewer files or folders\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			res := run(t, "", tt.args...)
			g.Expect(res.Code).To(Equal(1))
			g.Expect(res.Stdout).To(BeEmpty())
			g.Expect(res.Stderr).To(Equal(tt.want))
		})
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	file := secretFile("regcred.yaml")
	for _, args := range [][]string{
		{"nginx"},
		{"nginx", "--secret-file", file, "--secret", "regcred"},
		{"nginx", "--service-account", "default", "--pod", "web"},
		{"--secret-file", file},
		{"Nginx", "--secret-file", file},
		{"nginx:", "--secret-file", file},
		{"nginx", "--secret-file", file, "-o", "bogus"},
		{"nginx", "--secret", "Bad_Name"},
		{"nginx", "--service-account", ""},
		{"nginx", "--pod", "a/b"},
		{"nginx", "--secret-file", file, "-n", "Not_A_Namespace"},
		{"nginx", "--no-such-flag"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			res := run(t, "", append([]string{"match"}, args...)...)
			if res.Code != 2 || !strings.Contains(res.Stderr, "See 'kubectl pullsecrets match --help' for usage.") {
				t.Errorf("exit status %d, want 2; stderr: %s", res.Code, res.Stderr)
			}
		})
	}
}

func TestHelpHasExamples(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	res := run(t, "", "match", "--help")
	g.Expect(res.Code).To(Equal(0))
	g.Expect(res.Stdout).To(ContainSubstring("Examples:\n  # Which credentials"))
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	res := run(t, "", "__complete", "match", "nginx", "-o", "")
	g.Expect(res.Stdout).To(HavePrefix("wide\njson\nyaml\n"))
	g.Expect(res.Stdout).To(ContainSubstring("\njsonpath\n"))
	g.Expect(res.Stdout).To(ContainSubstring("\ntext\n:4\n"))
	files := run(t, "", "__complete", "match", "nginx", "--secret-file", "")
	g.Expect(files.Stdout).To(HavePrefix("yaml\nyml\njson\n:8\n"))
}

// secretMarker is in every password and token of the test data.
const secretMarker = "hunter2"

// TestNoPasswordInAnyOutput runs every Secret file of testdata/secrets in
// both formats against images that match each of their keys; run checks
// each output. It also checks that the check has something to look for.
func TestNoPasswordInAnyOutput(t *testing.T) {
	t.Parallel()
	values := forbiddenValues(t)
	if len(values) < 8 {
		t.Fatalf("found only %d secret values in the test data: %q", len(values), values)
	}
	images := []string{"nginx", "ghcr.io/acme/app", "quay.io/coreos/etcd", "quay.io/x", "reg.example.com:5000/app", "acr.azurecr.io/app", "other.example.com/app", "localhost/app", "registry-1.docker.io/library/nginx", "europe.pkg.dev/p/app"}
	paths, err := filepath.Glob(secretFile("*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		for _, format := range []string{"text", "json"} {
			args := append([]string{"match"}, images...)
			res := run(t, "", append(args, "--secret-file", p, "-o", format)...)
			if res.Stdout == "" {
				t.Errorf("%s: no output; stderr %s", p, res.Stderr)
			}
		}
	}
}

var base64Token = regexp.MustCompile(`[A-Za-z0-9+/]{12,}={0,2}`)

// secretBase64 returns the base64 strings in text that hold a secret,
// directly or in base64 inside, and those inside.
func secretBase64(text string) []string {
	var out []string
	for _, tok := range base64Token.FindAllString(text, -1) {
		decoded, err := base64.StdEncoding.DecodeString(tok)
		if err != nil {
			continue
		}
		inner := secretBase64(string(decoded))
		if strings.Contains(string(decoded), secretMarker) || len(inner) > 0 {
			out = append(append(out, tok), inner...)
		}
	}
	return out
}
