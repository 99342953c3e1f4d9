package manifests

import (
	"fmt"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/pullsecrets/pullsecrets/internal/manifests/yamledit"
)

// mergeBomb returns a Deployment whose Pod spec merges a mapping that
// merges fan copies of the one before, levels deep: fan^(levels-1)
// mappings once expanded, in a few hundred bytes.
func mergeBomb(levels, fan int) string {
	var b strings.Builder
	b.WriteString("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bomb}\nx:\n  a0: &a0 {k: v}\n")
	for i := 1; i < levels; i++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), fan), ", ")
		fmt.Fprintf(&b, "  a%d: &a%d {<<: [%s]}\n", i, i, refs)
	}
	fmt.Fprintf(&b, "spec:\n  template:\n    spec:\n      <<: *a%d\n      imagePullSecrets: [{name: regcred}]\n      containers: [{name: c, image: nginx}]\n", levels-1)
	return b.String()
}

// aliasBomb is the classic "billion laughs": lists of aliases of lists.
func aliasBomb(levels, fan int) string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: laughs}\ndata:\n  l0: &l0 [lol]\n")
	for i := 1; i < levels; i++ {
		fmt.Fprintf(&b, "  l%d: &l%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), fan), ", "))
	}
	return b.String()
}

// listBomb nests Lists whose items are aliases of the List before: every
// item is an object that Load would make.
func listBomb(levels, fan int) string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: List\nitems:\n- &l0 {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: nginx}]}}\n")
	for i := 1; i < levels; i++ {
		fmt.Fprintf(&b, "- &l%d {apiVersion: v1, kind: List, items: [%s]}\n", i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), fan), ", "))
	}
	return b.String()
}

// countNodes counts the nodes of a tree without following aliases.
func countNodes(n *yaml.Node) int {
	total := 1
	for _, c := range n.Content {
		total += countNodes(c)
	}
	return total
}

// TestAliasExpansionIsBounded checks files whose aliases or merge keys
// expand exponentially: the check visits each node of the file once (not
// the expansion), and Load refuses them before any lookup follows an alias.
// Ordinary anchors and merge keys still load.
func TestAliasExpansionIsBounded(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		data    string
		wantErr string // "" for a file that loads
		objects int
	}{
		// 721 bytes; Load and Scan took 4.7 s before the check, and each
		// level multiplied that by about 7.
		{name: "merge keys 10 levels of 8", data: mergeBomb(10, 8), wantErr: "aliases and merge keys (<<) expand its"},
		{name: "merge keys 40 levels of 8", data: mergeBomb(40, 8), wantErr: "aliases and merge keys (<<) expand its"},
		{name: "merge keys 60 levels of 2", data: mergeBomb(60, 2), wantErr: "aliases and merge keys (<<) expand its"},
		{name: "billion laughs", data: aliasBomb(10, 10), wantErr: "aliases and merge keys (<<) expand its"},
		{name: "nested Lists", data: listBomb(12, 6), wantErr: "aliases and merge keys (<<) expand its"},
		{name: "merge key into itself", data: "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: &s\n  <<: *s\n  containers: []\n", wantErr: "an alias refers to a node that contains it"},
		{name: "alias into itself", data: "apiVersion: v1\nkind: List\nitems: &i [*i]\n", wantErr: "an alias refers to a node that contains it"},
		{name: "ordinary merge keys", objects: 1, data: `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
      - &base {name: base, image: registry.example.com/base, imagePullPolicy: Always}
      - <<: [*base, {image: ignored, ports: []}]
        name: web
      - <<: *base
        name: sidecar
`},
		{name: "an anchored list used twice", objects: 2, data: `apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {name: a}, spec: {imagePullSecrets: &pull [{name: regcred}], containers: &c [{name: c, image: nginx}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: b}, spec: {imagePullSecrets: *pull, containers: *c}}
`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, err := yamledit.Parse([]byte(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			nodes := 0
			for _, d := range src.Docs {
				nodes += countNodes(d)
			}
			finding, e := checkExpansion("in.yaml", src.Docs)
			if e.visits != nodes {
				t.Errorf("the check visited %d nodes, want each of the file's %d once", e.visits, nodes)
			}
			gotErr := ""
			if finding != nil {
				gotErr = finding.Message
			}
			if !strings.Contains(gotErr, tc.wantErr) || (tc.wantErr == "") != (gotErr == "") {
				t.Errorf("check: %q, want %q", gotErr, tc.wantErr)
			}

			set, errs := Load([]File{{Path: "in.yaml", Data: []byte(tc.data)}}, Options{})
			if tc.wantErr != "" {
				if len(errs) != 1 || !strings.Contains(errs[0].Message, tc.wantErr) || errs[0].File != "in.yaml" {
					t.Errorf("Load errors %v, want one for in.yaml: %q", errs, tc.wantErr)
				}
				if len(set.Objects) != 0 {
					t.Errorf("Load kept %d objects of a refused file", len(set.Objects))
				}
				return
			}
			if len(errs) != 0 || len(set.Objects) != tc.objects {
				t.Errorf("Load: %d objects, errors %v; want %d objects", len(set.Objects), errs, tc.objects)
			}
		})
	}
}

// TestMergeKeysStillResolve checks that keys come from merged mappings in
// YAML's order: the mapping's own keys, then each merged one in turn.
func TestMergeKeysStillResolve(t *testing.T) {
	t.Parallel()
	data := `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
x:
  base: &base {image: registry.example.com/base, name: from-base}
  deep: &deep {<<: *base, name: from-deep}
spec:
  template:
    spec:
      <<: {serviceAccountName: merged-sa}
      containers:
      - <<: [*base, {image: ignored}]
        name: own
      - <<: *deep
      - <<: [{name: first}, *deep]
`
	set, errs := Load([]File{{Path: "in.yaml", Data: []byte(data)}}, Options{})
	if len(errs) > 0 || len(set.Workloads) != 1 {
		t.Fatalf("Load: %d workloads, errors %v", len(set.Workloads), errs)
	}
	w := set.Workloads[0]
	if w.ServiceAccount != "merged-sa" {
		t.Errorf("ServiceAccount %q, want merged-sa", w.ServiceAccount)
	}
	var got []string
	for _, img := range w.Images {
		got = append(got, img.Container+"="+img.Image)
	}
	want := "own=registry.example.com/base from-deep=registry.example.com/base first=registry.example.com/base"
	if strings.Join(got, " ") != want {
		t.Errorf("images %q, want %q", strings.Join(got, " "), want)
	}
}
