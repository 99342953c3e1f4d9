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
	"github.com/pullsecrets/pullsecrets/internal/planner"
)

// sourceState is what a ClusterPullSecret's source allows: the planner's
// view, and the Secret to copy when it is usable.
type sourceState struct {
	planner.Source
	Secret          *corev1.Secret
	ResourceVersion string
	// Keys are the credential's registry keys, normalised as the kubelet
	// does (no credential bytes): what the pod-injection policy matches.
	Keys []string
}

func (s sourceState) ok() bool { return s.Problem == "" }

// sources reads and validates source Secrets through the source cache,
// memoized per Secret and resourceVersion: every namespace reconcile asks.
type sources struct {
	reader  client.Reader
	allowed []string
	// keyNamespace holds the Secrets of provider sources.
	keyNamespace string
	// pending says why a provider source has no credential yet.
	pending func(cps string) string
	// config is the admin's CredentialProviderConfig.
	config *providerConfig

	mu   sync.Mutex
	memo map[types.NamespacedName]sourceState
}

// maxSourceMemo bounds the memo; it is rebuilt when full.
const maxSourceMemo = 1024

func newSources(reader client.Reader, allowed []string, keyNamespace string, config *providerConfig) *sources {
	return &sources{reader: reader, allowed: allowed, keyNamespace: keyNamespace, config: config, memo: map[types.NamespacedName]sourceState{},
		pending: func(string) string { return "" }}
}

func (s *sources) get(ctx context.Context, cps *v1alpha1.ClusterPullSecret) sourceState {
	ref := cps.Spec.Source
	key := types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}
	if p := ref.Provider; p != nil {
		cfg, cfgErr := s.config.get()
		if _, reason, msg := resolveProvider(cfg, cfgErr, s.config.path, p); reason != "" {
			return problem(reason, msg)
		}
		// A plugin's credential lives in a Secret the refresher keeps.
		key = types.NamespacedName{Namespace: s.keyNamespace, Name: providerSecretName(cps.Name)}
	} else if !slices.Contains(s.allowed, ref.Namespace) {
		return problem(v1alpha1.ReasonSourceNotFound, fmt.Sprintf(
			"source namespace %q is not one the controller may read from (allowed: %s)", ref.Namespace, strings.Join(s.allowed, ", ")))
	} else if why := s.reserved(ref.Namespace, ref.Name); why != "" {
		return problem(v1alpha1.ReasonSourceInvalid, why)
	}
	var secret corev1.Secret
	err := s.reader.Get(ctx, key, &secret)
	if err == nil && ref.Provider == nil && secret.Labels[v1alpha1.ProviderForLabel] != "" {
		return problem(v1alpha1.ReasonSourceInvalid, fmt.Sprintf(
			"source Secret %s is a plugin's credential kept for ClusterPullSecret %s; it cannot be another one's source", key, secret.Labels[v1alpha1.ProviderForLabel]))
	}
	if err == nil && ref.Provider != nil && !ownedBy(&secret, cps.UID) {
		// Left by a deleted ClusterPullSecret of the same name, or put
		// there by someone else: never copied. The refresher replaces it.
		err = apierrors.NewNotFound(corev1.Resource("secrets"), key.Name)
	}
	if apierrors.IsNotFound(err) && ref.Provider != nil {
		msg := fmt.Sprintf("no credential from plugin %s yet", ref.Provider.Name)
		if why := s.pending(cps.Name); why != "" {
			msg += ": " + why
		}
		return problem(v1alpha1.ReasonSourceNotFound, msg)
	}
	if apierrors.IsNotFound(err) {
		return problem(v1alpha1.ReasonSourceNotFound, fmt.Sprintf("source Secret %s not found", key))
	}
	if err != nil {
		return problem(v1alpha1.ReasonSourceNotFound, fmt.Sprintf("source Secret %s cannot be read: %v", key, err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.memo[key]; ok && st.ResourceVersion == secret.ResourceVersion {
		return st
	}
	st := validateSource(&secret)
	if len(s.memo) >= maxSourceMemo {
		clear(s.memo)
	}
	s.memo[key] = st
	return st
}

// reserved says why a Secret of the controller's own namespace cannot be
// a source: its ownership key, and the credentials it keeps for provider
// sources, belong to no ClusterPullSecret author.
func (s *sources) reserved(namespace, name string) string {
	if namespace != s.keyNamespace {
		return ""
	}
	switch {
	case name == v1alpha1.OwnershipKeySecretName:
		return fmt.Sprintf("source Secret %s/%s is the controller's ownership key; it cannot be a source", namespace, name)
	case strings.HasPrefix(name, v1alpha1.ProviderSecretPrefix):
		return fmt.Sprintf("source Secret %s/%s is named as the credentials the controller keeps for provider sources (%s*); it cannot be a source: name the provider instead",
			namespace, name, v1alpha1.ProviderSecretPrefix)
	}
	return ""
}

func problem(reason, message string) sourceState {
	return sourceState{Source: planner.Source{Problem: reason, Message: message}}
}

// validateSource checks that the Secret is a pull secret the kubelet can
// use. Messages name finding codes, never data.
func validateSource(secret *corev1.Secret) sourceState {
	ref := secret.Namespace + "/" + secret.Name
	switch secret.Type {
	case corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg:
	default:
		st := problem(v1alpha1.ReasonSourceInvalid, fmt.Sprintf("source Secret %s has type %q; want %s or %s",
			ref, secret.Type, corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg))
		st.ResourceVersion = secret.ResourceVersion
		return st
	}
	cs := credentials.Secret{Namespace: secret.Namespace, Name: secret.Name, Type: string(secret.Type), Data: secret.Data}
	if findings := credentials.Validate(cs); credentials.HasError(findings) {
		var problems []string
		for _, f := range findings {
			if f.Severity == credentials.SeverityError {
				problems = append(problems, f.Message)
			}
		}
		st := problem(v1alpha1.ReasonSourceInvalid, fmt.Sprintf("source Secret %s is not a usable pull secret: %s", ref, strings.Join(problems, "; ")))
		st.ResourceVersion = secret.ResourceVersion
		return st
	}
	keyring := credentials.NewKeyring([]credentials.Secret{cs})
	return sourceState{
		Source: planner.Source{
			Hash: dataHash(secret.Type, secret.Data), Type: string(secret.Type), HashAs: hashesIn(secret),
			// Restarting a Pod whose pull fails for another registry would
			// not help it.
			Matches: func(image string) bool {
				m, err := keyring.Lookup(image)
				return err == nil && len(m.Credentials) > 0
			},
		},
		Secret: secret, ResourceVersion: secret.ResourceVersion, Keys: keyring.Keys(),
	}
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
