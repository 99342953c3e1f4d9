package create

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
)

// CheckServer refuses a --docker-server the kubelet could never use, read
// as the kubelet reads registry keys (package credentials): a key it
// ignores or that never matches an image; a port outside 1-65535, on which
// no registry listens; and a host without a dot or port, other than
// localhost, which only Docker Hub image names look like (`team/app` is
// docker.io/team/app), so the key matches nothing.
func CheckServer(server string) error {
	if server == "" {
		return errors.New("empty")
	}
	data, err := credentials.Build(server, "user", "password", "")
	if err != nil {
		return err
	}
	for _, f := range credentials.Validate(credentials.Secret{Namespace: "ns", Name: "check", Type: string(corev1.SecretTypeDockerConfigJson),
		Data: map[string][]byte{corev1.DockerConfigJsonKey: data}}) {
		if f.Code == credentials.CodeUnmatchableKey {
			_, problem, _ := strings.Cut(f.Message, ": ")
			return fmt.Errorf("the kubelet cannot use it: %s", problem)
		}
		if f.Severity == credentials.SeverityError {
			return fmt.Errorf("the kubelet cannot use it (%s)", f.Code)
		}
	}
	rest := server
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	u, err := url.Parse("https://" + rest)
	if err != nil {
		return fmt.Errorf("the kubelet cannot parse it: %w", errors.Unwrap(err))
	}
	host, port := u.Hostname(), u.Port()
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %s is not a port (1-65535): no registry can listen there", port)
		}
	}
	if port == "" && !strings.Contains(host, ".") && host != "localhost" && net.ParseIP(host) == nil {
		return fmt.Errorf("host %q has no dot and no port: image names that start with it are Docker Hub images (%s/app is docker.io/%s/app), so this key never matches; write the registry's full host name", host, host, host)
	}
	return nil
}
