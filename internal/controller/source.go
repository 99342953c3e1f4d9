package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
)

// sourceState is what a ClusterPullSecret's source allows. Reason is empty
// when the source can be copied.
type sourceState struct {
	Secret          *corev1.Secret
	Hash            string
	ResourceVersion string
	Reason          string
	Message         string
}

func (s sourceState) ok() bool { return s.Reason == "" }

// sources reads and validates source Secrets through the source cache, and
// memoizes validation per resourceVersion: every namespace reconcile asks.
type sources struct {
	reader  client.Reader
	allowed []string

	mu   sync.Mutex
	memo map[types.UID]sourceState
}

func newSources(reader client.Reader, allowed []string) *sources {
	return &sources{reader: reader, allowed: allowed, memo: map[types.UID]sourceState{}}
}

func (s *sources) get(ctx context.Context, cps *v1alpha1.ClusterPullSecret) (sourceState, error) {
	ref := cps.Spec.Source
	if !slices.Contains(s.allowed, ref.Namespace) {
		return sourceState{Reason: v1alpha1.ReasonSourceNotFound, Message: fmt.Sprintf(
			"source namespace %q is not one the controller may read from (allowed: %s)", ref.Namespace, strings.Join(s.allowed, ", "))}, nil
	}
	var secret corev1.Secret
	err := s.reader.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, &secret)
	if apierrors.IsNotFound(err) {
		return sourceState{Reason: v1alpha1.ReasonSourceNotFound, Message: fmt.Sprintf("source Secret %s/%s not found", ref.Namespace, ref.Name)}, nil
	}
	if err != nil {
		return sourceState{}, fmt.Errorf("read source Secret %s/%s: %w", ref.Namespace, ref.Name, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.memo[secret.UID]; ok && st.ResourceVersion == secret.ResourceVersion {
		return st, nil
	}
	st := validateSource(&secret)
	s.memo[secret.UID] = st
	return st, nil
}

// validateSource checks that the Secret is a pull secret the kubelet can
// use. Messages name finding codes, never data.
func validateSource(secret *corev1.Secret) sourceState {
	ref := secret.Namespace + "/" + secret.Name
	st := sourceState{ResourceVersion: secret.ResourceVersion}
	switch secret.Type {
	case corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg:
	default:
		st.Reason = v1alpha1.ReasonSourceInvalid
		st.Message = fmt.Sprintf("source Secret %s has type %q; want %s or %s", ref, secret.Type, corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg)
		return st
	}
	findings := credentials.Validate(credentials.Secret{
		Namespace: secret.Namespace, Name: secret.Name, Type: string(secret.Type), Data: secret.Data,
	})
	if credentials.HasError(findings) {
		var problems []string
		for _, f := range findings {
			if f.Severity == credentials.SeverityError {
				problems = append(problems, f.Message)
			}
		}
		st.Reason = v1alpha1.ReasonSourceInvalid
		st.Message = fmt.Sprintf("source Secret %s is not a usable pull secret: %s", ref, strings.Join(problems, "; "))
		return st
	}
	st.Secret = secret
	st.Hash = dataHash(secret.Type, secret.Data)
	return st
}

// dataHash identifies a copy's content, so that the controller can tell a
// current copy from a stale one with a metadata-only cache. Copies are
// readable only by those who may read the data itself, so the hash tells
// them nothing new.
func dataHash(t corev1.SecretType, data map[string][]byte) string {
	h := sha256.New()
	h.Write([]byte(t))
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "\x00%s\x00%d\x00", k, len(data[k]))
		h.Write(data[k])
	}
	return "sha256-" + hex.EncodeToString(h.Sum(nil))
}
