package main

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"
)

// chartDir is the chart's folder, relative to the repository.
const chartDir = "charts/pullsecrets"

// chartArchiveName is what `helm package` names the chart of version v.
func chartArchiveName(v string) string { return "pullsecrets-" + v + ".tgz" }

// packageChart packs the chart as `helm package --version v --app-version v`
// would (every file under pullsecrets/, Chart.yaml's version and appVersion
// set to v), but reproducibly: Helm 3 stamps each entry with the time of
// packaging, this stamps mtime. `helm lint` and `helm template` read the
// result (TestChart, make release-snapshot).
func packageChart(root, v string, mtime time.Time) ([]byte, error) {
	dir := filepath.Join(root, chartDir)
	var members []member
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "Chart.yaml" {
			data = withChartVersion(data, v)
		}
		members = append(members, member{name: path.Join("pullsecrets", rel), mode: 0o644, data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read chart %s: %w", dir, err)
	}
	return tarGz(members, mtime)
}
