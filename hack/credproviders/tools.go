//go:build tools

// Package credproviders pins the kubelet credential provider plugins that
// pullsecrets runs, so that `go build` in this module can produce them.
package credproviders

import (
	_ "k8s.io/cloud-provider-aws/cmd/ecr-credential-provider"
)
