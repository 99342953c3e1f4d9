package cmdutil

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"
)

// kindNames are the spellings kubectl takes for the kinds named on our
// command lines (kubectl api-resources: singular, plural, short name).
var kindNames = map[string][]string{
	"Pod":            {"pod", "pods", "po"},
	"Secret":         {"secret", "secrets"},
	"ServiceAccount": {"serviceaccount", "serviceaccounts", "sa"},
}

// ParseName takes NAME or TYPE/NAME, as kubectl does (`pod/web`,
// `pods/web`, `po/web`), for an object of kind; another TYPE, or a name
// that is not a valid object name, is a usage error.
func ParseName(cmd *cobra.Command, arg, kind string) (string, error) {
	name := arg
	if typ, rest, ok := strings.Cut(arg, "/"); ok {
		if !slices.Contains(kindNames[kind], strings.ToLower(typ)) {
			return "", UsageErrorf(cmd, "%q: want a %s (%s/NAME or NAME)", arg, kind, kindNames[kind][0])
		}
		name = rest
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return "", UsageErrorf(cmd, "invalid %s name %q: %s", kind, name, errs[0])
	}
	return name, nil
}
