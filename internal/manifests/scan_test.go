package manifests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// secretValue is the password in testdata/scan; it must never come out.
const secretValue = "hunter2-SECRET-VALUE"

func TestScanGolden(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "scan")
	in := readTree(t, filepath.Join(dir, "in"))
	var files []File
	for _, p := range sortedKeys(in) {
		files = append(files, File{Path: p, Data: []byte(in[p])})
	}
	set, errs := Load(files, Options{})
	report := Scan(set, errs)
	got, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join(dir, "report.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("scan report differs (-want +got):\n%s", diff)
	}
	if !report.HasErrors() {
		t.Error("HasErrors is false for a scan with dangling references")
	}
	for _, leak := range []string{secretValue, "cm9ib3Q6aHVudGVy"} {
		if strings.Contains(string(got), leak) {
			t.Errorf("the scan report contains secret data %q", leak)
		}
	}
}

// TestNothingLeaksSecretData runs every command over manifests that hold a
// password in well-formed and malformed places, and checks that no finding,
// note, refusal or error quotes it (CVE-2020-8564).
func TestNothingLeaksSecretData(t *testing.T) {
	t.Parallel()
	inputs := map[string]string{
		"malformed.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\nstringData:\n  .dockerconfigjson: \"" + secretValue + "\\q\"\n",
		"dupkey.yaml":    "apiVersion: v1\nkind: Secret\nmetadata: {name: b}\nstringData:\n  \"" + secretValue + "\": 1\n  \"" + secretValue + "\": 2\n",
		"anchor.yaml":    "apiVersion: v1\nkind: Pod\nmetadata: {name: c}\nspec: *" + secretValue + "\n",
		"badtype.yaml":   "apiVersion: v1\nkind: Secret\nmetadata: {name: regcred}\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{\"auths\": {\"r.example.com\": {\"auth\": \"" + secretValue + "\"}}}'\n",
		"pod.yaml":       "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  imagePullSecrets: [{name: regcred}]\n  containers: [{name: c, image: r.example.com/c}]\n",
	}
	var files []File
	for _, p := range sortedKeys(inputs) {
		files = append(files, File{Path: p, Data: []byte(inputs[p])})
	}
	set, errs := Load(files, Options{})
	var out []string
	for _, f := range errs {
		out = append(out, f.String())
	}
	report, _ := json.Marshal(Scan(set, errs))
	out = append(out, string(report))
	for _, res := range []*Result{Migrate(set, errs, MigrateOptions{}), Rename(set, errs, "regcred", "other")} {
		for _, list := range [][]Finding{res.Notes, res.Refused, res.Errors} {
			for _, f := range list {
				out = append(out, f.String())
			}
		}
	}
	all := strings.Join(out, "\n")
	if strings.Contains(all, secretValue) {
		t.Errorf("secret data leaked:\n%s", all)
	}
	if len(errs) < 3 {
		t.Errorf("want an error for each malformed file, got %v", errs)
	}
}
