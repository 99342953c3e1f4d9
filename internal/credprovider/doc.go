// Package credprovider runs kubelet credential provider plugins the way the
// kubelet does (exec protocol credentialprovider.kubelet.k8s.io, KEP-2133 and
// KEP-4412) and turns their answer into .dockerconfigjson data, so that the
// controller can keep short-lived registry tokens (ECR, Artifact Registry,
// ACR) in pull secrets. It also holds the refresh schedule, as pure functions.
//
// Upstream is kubernetes/kubernetes v1.37.2 pkg/credentialprovider/plugin
// (plugin.go, config.go); each mirror names its upstream function. See
// docs/short-lived-tokens.md.
//
// Nothing this package returns, an error, a Result or a formatted
// AuthConfig, holds a password, the request's service account token, or
// any byte of what the plugin wrote to stdout or stderr: a plugin may print
// a password in its error message.
package credprovider
