package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	kubeletconfigv1 "k8s.io/kubelet/config/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/credprovider"
)

// providerConfigPoll is how often the configuration is read again when no
// file event came: a safety net for file systems that send none.
const providerConfigPoll = 30 * time.Second

// providerConfig holds the cluster admin's CredentialProviderConfig, read
// from a file or folder (a mounted ConfigMap) and read again when it
// changes. A file that no longer loads is reported and the last good
// configuration kept: a typo in one provider must not stop every source
// that works. Every replica reads it; only the leader runs plugins.
type providerConfig struct {
	path string
	// changed is called after the configuration, or its error, changed.
	changed func()

	mu       sync.RWMutex
	cfg      *credprovider.Config
	err      error
	errSince time.Time
}

func newProviderConfig(path string) *providerConfig {
	p := &providerConfig{path: path, changed: func() {}}
	p.load(context.Background())
	return p
}

// get returns the configuration in use and the error of the last read.
func (p *providerConfig) get() (*credprovider.Config, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.cfg, p.err
}

// load reads the configuration and reports whether anything changed.
func (p *providerConfig) load(ctx context.Context) bool {
	if p.path == "" {
		return false
	}
	cfg, err := credprovider.LoadConfig(p.path)
	if errors.Is(err, credprovider.ErrNoConfigFiles) {
		// A mounted ConfigMap without config.yaml: no plugins, by choice.
		cfg, err = &credprovider.Config{Hash: "none"}, nil
	}
	logger := log.FromContext(ctx).WithName("credential-providers").WithValues("path", p.path)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if p.err != nil && p.err.Error() == err.Error() {
			return false
		}
		p.err, p.errSince = err, time.Now()
		if p.cfg != nil {
			logger.Error(err, "the credential provider configuration no longer loads; the last good one is kept", "inUse", p.cfg.Hash)
		} else {
			logger.Error(err, "the credential provider configuration does not load; provider sources wait for it")
		}
		return true
	}
	if p.err == nil && p.cfg != nil && p.cfg.Hash == cfg.Hash {
		return false
	}
	p.cfg, p.err = cfg, nil
	logger.Info("credential provider configuration loaded", "hash", cfg.Hash, "providers", cfg.Names())
	return true
}

// NeedLeaderElection: every replica resolves provider sources.
func (p *providerConfig) NeedLeaderElection() bool { return false }

// Start reads the configuration again when its folder changes (a mounted
// ConfigMap is updated by swapping a link in it) and every
// providerConfigPoll, until ctx ends.
func (p *providerConfig) Start(ctx context.Context) error {
	if p.path == "" {
		<-ctx.Done()
		return nil
	}
	var events <-chan fsnotify.Event
	if w, err := fsnotify.NewWatcher(); err == nil {
		defer w.Close()
		// Watch the folder, not the file: the file is replaced, not written.
		dir := p.path
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			dir = filepath.Dir(dir)
		}
		if err := w.Add(dir); err == nil {
			events = w.Events
		}
	}
	ticker := time.NewTicker(providerConfigPoll)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-events:
			// A swap is several events: read once they settle.
			time.Sleep(100 * time.Millisecond)
			drain(events)
		case <-ticker.C:
		}
		if p.load(ctx) {
			p.changed()
		}
	}
}

func drain(events <-chan fsnotify.Event) {
	for {
		select {
		case <-events:
		default:
			return
		}
	}
}

// resolvedProvider is a provider source checked against the admin's
// configuration: the plugin to run and what to ask it.
type resolvedProvider struct {
	provider kubeletconfigv1.CredentialProvider
	// image is what the plugin is asked for (credentials.ProviderImage).
	image string
}

// resolveProvider checks a provider source against the configuration in
// use: the provider is configured, its matchImages cover the image (as the
// kubelet's isImageAllowed), and the source sets nothing that moved to the
// configuration. It returns a condition reason and message when it cannot
// be used. Pure.
func resolveProvider(cfg *credprovider.Config, cfgErr error, configPath string, src *v1alpha1.CredentialProviderSource) (resolvedProvider, string, string) {
	if moved := src.MovedFields(); len(moved) > 0 {
		return resolvedProvider{}, v1alpha1.ReasonInvalidSpec, movedMessage(moved)
	}
	if cfg == nil {
		switch {
		case configPath == "":
			return resolvedProvider{}, v1alpha1.ReasonProviderNotConfigured, fmt.Sprintf(
				"provider %q is not configured: the controller runs without a CredentialProviderConfig (--credential-provider-config); the cluster admin configures plugins (docs/short-lived-tokens.md)", src.Name)
		case cfgErr != nil:
			return resolvedProvider{}, v1alpha1.ReasonProviderNotConfigured, fmt.Sprintf(
				"provider %q cannot be used: the controller's CredentialProviderConfig does not load: %v", src.Name, cfgErr)
		}
	}
	p, ok := cfg.Provider(src.Name)
	if !ok {
		return resolvedProvider{}, v1alpha1.ReasonProviderNotConfigured, fmt.Sprintf(
			"provider %q is not in the controller's CredentialProviderConfig (configured: %s); ask the cluster admin", src.Name, listOrNone(cfg.Names()))
	}
	if src.APIVersion != "" && src.APIVersion != p.APIVersion {
		return resolvedProvider{}, v1alpha1.ReasonInvalidSpec, movedMessage([]string{"apiVersion"})
	}
	image, err := credentials.ProviderImage(src.Image)
	if err != nil {
		return resolvedProvider{}, v1alpha1.ReasonInvalidSpec, fmt.Sprintf("spec.source.provider.image %q is neither an image nor a registry host: %v", src.Image, err)
	}
	if !credprovider.Allows(p, image) {
		return resolvedProvider{}, v1alpha1.ReasonImageNotAllowed, fmt.Sprintf(
			"image %q is not one provider %q may be asked for: its matchImages are %s", src.Image, src.Name, strings.Join(p.MatchImages, ", "))
	}
	return resolvedProvider{provider: p, image: image}, "", ""
}

func movedMessage(fields []string) string {
	return fmt.Sprintf("spec.source.provider.%s moved to the cluster admin's CredentialProviderConfig (the controller's --credential-provider-config; docs/short-lived-tokens.md): remove %s from the ClusterPullSecret",
		strings.Join(fields, ", "), map[bool]string{true: "it", false: "them"}[len(fields) == 1])
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
