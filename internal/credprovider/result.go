package credprovider

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
)

// CacheDurationSource says where Result.CacheDuration comes from.
type CacheDurationSource string

// Sources of a cache duration.
const (
	// CacheDurationPlugin: the response's cacheDuration.
	CacheDurationPlugin CacheDurationSource = "Plugin"
	// CacheDurationDefault: the response had none; Plugin.DefaultCacheDuration.
	CacheDurationDefault CacheDurationSource = "Default"
	// CacheDurationMinimum: raised to Plugin.MinCacheDuration.
	CacheDurationMinimum CacheDurationSource = "Minimum"
)

// Result is a plugin's answer, ready to be stored. Its String, GoString,
// Format, LogValue and MarshalJSON (value receivers, so that a copy
// redacts too) leave out passwords and the data.
type Result struct {
	Plugin string
	Image  string
	// CacheKeyType is Image, Registry or Global.
	CacheKeyType string
	// Auth maps a registry key (globs allowed, e.g. *.azurecr.io) to its
	// credentials, as the plugin returned them.
	Auth map[string]AuthConfig
	// CacheDuration is how long the credentials may be used; 0 means the
	// plugin vouches for them only now.
	CacheDuration       time.Duration
	CacheDurationSource CacheDurationSource
	// Obtained is when the plugin was started: the token is no older.
	Obtained time.Time
	// Expires is Obtained plus CacheDuration.
	Expires time.Time
	// DockerConfigJSON is the .dockerconfigjson of a
	// kubernetes.io/dockerconfigjson Secret, in kubectl's entry form.
	DockerConfigJSON []byte
	// Findings are the warnings on entries left out of DockerConfigJSON
	// (e.g. an anonymous entry with empty credentials).
	Findings []credentials.Finding
	// StderrBytes is how much the plugin logged; the logs are never kept.
	StderrBytes int64
}

// Registries lists the keys of Auth, sorted.
func (r Result) Registries() []string { return slices.Sorted(maps.Keys(r.Auth)) }

// String describes the result without passwords or data.
func (r Result) String() string {
	return fmt.Sprintf("credentials from plugin %q for image %q: registries %q, cacheKeyType %s, cacheDuration %s (%s), obtained %s, expires %s",
		r.Plugin, r.Image, r.Registries(), r.CacheKeyType, r.CacheDuration, r.CacheDurationSource,
		r.Obtained.UTC().Format(time.RFC3339), r.Expires.UTC().Format(time.RFC3339))
}

// GoString is String, so that %#v redacts too.
func (r Result) GoString() string { return "credprovider.Result{" + r.String() + "}" }

// Format prints String for every verb.
func (r Result) Format(f fmt.State, verb rune) { formatRedacted(f, verb, r.String(), r.GoString()) }

// LogValue keeps passwords and data out of structured logs.
func (r Result) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("plugin", r.Plugin), slog.String("image", r.Image),
		slog.Any("registries", r.Registries()), slog.String("cacheKeyType", r.CacheKeyType),
		slog.Duration("cacheDuration", r.CacheDuration), slog.Time("expires", r.Expires))
}

// MarshalJSON encodes the description only.
func (r Result) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Plugin        string    `json:"plugin"`
		Image         string    `json:"image"`
		Registries    []string  `json:"registries"`
		CacheKeyType  string    `json:"cacheKeyType"`
		CacheDuration string    `json:"cacheDuration"`
		Source        string    `json:"cacheDurationSource"`
		Obtained      time.Time `json:"obtained"`
		Expires       time.Time `json:"expires"`
	}{r.Plugin, r.Image, r.Registries(), r.CacheKeyType, r.CacheDuration.String(), string(r.CacheDurationSource), r.Obtained, r.Expires})
}

// AuthConfig is one registry's credentials. It prints, logs and encodes
// without its password.
type AuthConfig struct {
	Username string
	Password string `json:"-"`
}

// String describes the credentials without the password.
func (a AuthConfig) String() string {
	pass := "<empty>"
	if a.Password != "" {
		pass = "<redacted>"
	}
	return fmt.Sprintf("username=%q password=%s", a.Username, pass)
}

// GoString is String, so that %#v redacts too.
func (a AuthConfig) GoString() string { return "credprovider.AuthConfig{" + a.String() + "}" }

// Format prints String for every verb.
func (a AuthConfig) Format(f fmt.State, verb rune) { formatRedacted(f, verb, a.String(), a.GoString()) }

// LogValue keeps the password out of structured logs.
func (a AuthConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("username", a.Username))
}

// formatRedacted writes description for any verb (goString for %#v),
// quoted for %q, so that no verb reaches the fields.
func formatRedacted(f fmt.State, verb rune, description, goString string) {
	switch {
	case verb == 'v' && f.Flag('#'):
		description = goString
	case verb == 'q':
		description = fmt.Sprintf("%q", description)
	}
	_, _ = f.Write([]byte(description))
}
