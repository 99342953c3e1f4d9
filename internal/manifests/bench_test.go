package manifests

import (
	"fmt"
	"testing"
)

// BenchmarkMigrate runs Load and Migrate over 10,000 generated files: a
// Deployment per file with an inline list, spread over 100 namespaces, a
// ServiceAccount manifest in every other namespace.
func BenchmarkMigrate(b *testing.B) {
	const n = 10000
	files := make([]File, 0, n)
	for i := range n {
		ns := fmt.Sprintf("team-%d", i%100)
		var text string
		if i < 100 && i%2 == 0 {
			text = fmt.Sprintf("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: %s\n", ns)
		} else {
			text = fmt.Sprintf(`# Source: app/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-%d
  namespace: %s
  labels: {app: app-%d}
spec:
  replicas: 2
  template:
    metadata:
      labels:
        app: app-%d
    spec:
      imagePullSecrets:
        - name: regcred   # the team's registry
      containers:
        - name: app
          image: registry.example.com/%s/app:%d
          ports:
            - containerPort: 8080
`, i, ns, i, i, ns, i)
		}
		files = append(files, File{Path: fmt.Sprintf("manifests/%s/file-%05d.yaml", ns, i), Data: []byte(text), Mode: 0o644})
	}
	b.ReportAllocs()
	b.ResetTimer()
	var changes int
	for b.Loop() {
		set, errs := Load(files, Options{})
		res := Migrate(set, errs, MigrateOptions{})
		changes = len(res.Changes)
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "files/s")
	b.ReportMetric(float64(changes), "changes")
}
