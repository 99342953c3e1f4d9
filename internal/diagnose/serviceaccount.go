package diagnose

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
)

// ServiceAccount reports what is wrong with the pull secrets a
// ServiceAccount lists, which every new Pod of it gets: Secrets that do not
// exist, that the kubelet reads nothing from, or that it cannot decode
// (which would fail every pull of those Pods). secrets holds the
// namespace's Secrets by name, as far as access allows: with
// SecretsMetadata only existence and type are checked, with SecretsUnknown
// nothing.
func ServiceAccount(sa *corev1.ServiceAccount, secrets map[string]*corev1.Secret, access SecretAccess) []Problem {
	problems := []Problem{}
	seen := map[string]bool{}
	for _, r := range sa.ImagePullSecrets {
		if r.Name == "" || seen[r.Name] {
			continue
		}
		seen[r.Name] = true
		if access == SecretsUnknown {
			continue
		}
		s, ok := secrets[r.Name]
		if !ok || s == nil {
			problems = append(problems, Problem{
				Code: CodeSecretMissing, Severity: SeverityError, Secret: r.Name,
				Message: fmt.Sprintf("ServiceAccount %s lists pull secret %s, which does not exist in namespace %s: its Pods pull without it", sa.Name, r.Name, sa.Namespace),
				Fix:     fmt.Sprintf("kubectl pullsecrets create %s -n %s --docker-server=REGISTRY --docker-username=USER --docker-password-stdin", r.Name, sa.Namespace),
			})
			continue
		}
		if access == SecretsMetadata {
			if !isPullSecretType(s.Type) {
				problems = append(problems, Problem{
					Code: CodeSecretWrongType, Severity: SeverityError, Secret: r.Name,
					Message: fmt.Sprintf("pull secret %s of ServiceAccount %s is not of type %s or %s: the kubelet reads no credentials from it", r.Name, sa.Name, corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg),
					Fix:     fmt.Sprintf("kubectl pullsecrets create %s -n %s --overwrite --docker-server=REGISTRY --docker-username=USER --docker-password-stdin", r.Name, sa.Namespace),
				})
			}
			continue
		}
		for _, f := range credentials.Validate(toSecret(s)) {
			if f.Severity != credentials.SeverityError {
				continue
			}
			code, effect := CodeSecretWrongType, "the kubelet reads no credentials from it"
			if failsKeyring(f.Code) {
				code, effect = CodeSecretUnparsable, "the kubelet cannot decode it and fails every image pull of the Pods that list it"
			}
			problems = append(problems, Problem{
				Code: code, Severity: SeverityError, Secret: r.Name,
				Message: fmt.Sprintf("pull secret %s of ServiceAccount %s is unusable (%s: %s): %s", r.Name, sa.Name, f.Code, strings.TrimSuffix(f.Message, "."), effect),
				Fix:     fmt.Sprintf("kubectl pullsecrets create %s -n %s --overwrite --docker-server=REGISTRY --docker-username=USER --docker-password-stdin", r.Name, sa.Namespace),
			})
			break // one problem per Secret
		}
	}
	return problems
}
