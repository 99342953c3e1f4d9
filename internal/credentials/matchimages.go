package credentials

import "strings"

// ValidMatchImage reports whether pattern parses as the kubelet parses an
// entry of a credential provider's matchImages
// (credentialprovider.ParseSchemelessURL, as validateCredentialProviderConfig
// calls it).
func ValidMatchImage(pattern string) error {
	_, err := parseSchemelessURL(pattern)
	return err
}

// MatchImage reports whether a credential provider's matchImages entry
// matches image, as credentialprovider.URLsMatchStr does for the kubelet's
// pluginProvider.isImageAllowed: the same number of host labels each
// matched as a glob, an identical port, and the pattern's path a prefix of
// the image's. image is what ProviderImage returns. A pattern or image that
// does not parse matches nothing, as upstream ignores the error.
func MatchImage(pattern, image string) bool {
	glob, err := parseSchemelessURL(pattern)
	if err != nil {
		return false
	}
	target, err := parseSchemelessURL(image)
	if err != nil {
		return false
	}
	matched, err := urlsMatch(newSplitKey(glob), newSplitKey(target))
	return err == nil && matched
}

// ProviderImage is what the kubelet would ask a credential provider for:
// the repository of an image reference, normalised as the kubelet's
// parsers.ParseImageName does ("nginx:1" -> "docker.io/library/nginx").
// A bare registry host ("123456789012.dkr.ecr.us-west-2.amazonaws.com",
// "registry:5000"), which names no repository, is kept as it is: the
// reference grammar would read it as a Docker Hub repository.
func ProviderImage(image string) (string, error) {
	if !strings.Contains(image, "/") {
		if _, err := parseSchemelessURL(image); err != nil {
			return "", err
		}
		return image, nil
	}
	return normalizeImage(image)
}
