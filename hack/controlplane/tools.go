//go:build tools

// Package controlplane pins the kube-apiserver, kube-controller-manager and
// etcd main packages so that `go build` in this module can produce them.
package controlplane

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
