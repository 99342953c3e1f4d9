// Package credentials reads, builds, validates and matches registry
// credentials exactly as the kubelet does with a Pod's image pull secrets.
//
// It is a pure library: it takes Secret data and image references and returns
// data, and imports no Kubernetes client. Where it mirrors the kubelet, the
// comment names the upstream function (kubernetes/kubernetes v1.37,
// pkg/credentialprovider and pkg/util/parsers) so the two can be compared.
//
// Nothing this package returns, whether an error, a Finding, a Miss or a
// formatted Credential, ever holds a password, an auth string or other
// Secret data bytes.
package credentials
