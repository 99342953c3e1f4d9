//go:build tools

// Package controlplane pins the kube-apiserver, kube-controller-manager and
// etcd main packages so that `go build` in this module can produce them.
//
// etcd is v3.7.0, not a v3.6.x release: k8s.io/kubernetes v1.37.2 itself
// requires go.etcd.io/etcd/{client,server}/v3 v3.7.0, so minimal version
// selection would raise any older pin to it, and the server we build is the
// one that Kubernetes release was built and tested with.
package controlplane

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
