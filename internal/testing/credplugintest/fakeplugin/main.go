// Command fakeplugin is a kubelet credential provider plugin for tests. It
// speaks the exec protocol (credentialprovider.kubelet.k8s.io) with its own
// types, so that the runner is tested against an independent encoder, and
// misbehaves on request: -mode selects how. See credplugintest for the
// modes.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type request struct {
	APIVersion                string            `json:"apiVersion"`
	Kind                      string            `json:"kind"`
	Image                     string            `json:"image"`
	ServiceAccountToken       string            `json:"serviceAccountToken,omitempty"`
	ServiceAccountAnnotations map[string]string `json:"serviceAccountAnnotations,omitempty"`
}

type authConfig struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type response struct {
	APIVersion    string                `json:"apiVersion"`
	Kind          string                `json:"kind"`
	CacheKeyType  string                `json:"cacheKeyType,omitempty"`
	CacheDuration string                `json:"cacheDuration,omitempty"`
	Auth          map[string]authConfig `json:"auth,omitempty"`
}

type options struct {
	mode, cacheDuration, registry, username, usernameFromEnv string
	passwordPrefix, state, secret, dump, childPIDFile        string
	apiVersion, cacheKeyType                                 string
	exitCode, size, call                                     int
}

func main() {
	var o options
	fs := flag.NewFlagSet("fakeplugin", flag.ContinueOnError)
	fs.StringVar(&o.mode, "mode", "good", "how to behave")
	fs.StringVar(&o.cacheDuration, "cache-duration", "", "cacheDuration to answer (empty: none)")
	fs.StringVar(&o.registry, "registry", "", "auth key (default: the image's host)")
	fs.StringVar(&o.username, "username", "fake", "username to answer")
	fs.StringVar(&o.usernameFromEnv, "username-from-env", "", "answer the value of this environment variable as the username")
	fs.StringVar(&o.passwordPrefix, "password-prefix", "pw", "passwords are PREFIX-CALL-RANDOM")
	fs.StringVar(&o.state, "state", "", "file counting the calls")
	fs.StringVar(&o.secret, "secret", "s3cret", "text the misbehaving modes print")
	secretEnv := fs.String("secret-env", "", "take -secret from this environment variable (so that it appears in no argument)")
	fs.StringVar(&o.dump, "dump", "", "write the request as received to this file")
	fs.StringVar(&o.childPIDFile, "child-pid-file", "", "hang-with-child, orphan: write the child's pid here")
	fs.StringVar(&o.apiVersion, "api-version", "", "apiVersion to answer (default: the request's)")
	fs.StringVar(&o.cacheKeyType, "cache-key-type", "Registry", "cacheKeyType to answer")
	fs.IntVar(&o.exitCode, "exit-code", 1, "exit: the status")
	fs.IntVar(&o.size, "size", 4<<20, "oversized-*: bytes to write")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if *secretEnv != "" {
		o.secret = os.Getenv(*secretEnv)
	}
	o.call = countCall(o.state)
	os.Exit(run(o))
}

func run(o options) int {
	// Modes that never read the request.
	switch o.mode {
	case "hang":
		time.Sleep(time.Hour)
		return 0
	case "hang-with-child":
		if _, err := startChild(o, "hang", false); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		time.Sleep(time.Hour)
		return 0
	case "signal":
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Hour)
		return 0
	case "exit":
		return o.exitCode
	}

	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "read stdin:", err)
		return 2
	}
	if o.dump != "" {
		if err := os.WriteFile(o.dump, data, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "dump:", err)
			return 2
		}
	}
	var req request
	if err := json.Unmarshal(data, &req); err != nil || req.Kind != "CredentialProviderRequest" || req.Image == "" ||
		!strings.HasPrefix(req.APIVersion, "credentialprovider.kubelet.k8s.io/") {
		fmt.Fprintln(os.Stderr, "not a CredentialProviderRequest")
		return 2
	}
	apiVersion := or(o.apiVersion, req.APIVersion)
	username := o.username
	if o.usernameFromEnv != "" {
		username = os.Getenv(o.usernameFromEnv)
	}
	resp := response{
		APIVersion:    apiVersion,
		Kind:          "CredentialProviderResponse",
		CacheKeyType:  o.cacheKeyType,
		CacheDuration: o.cacheDuration,
		Auth:          map[string]authConfig{or(o.registry, host(req.Image)): {Username: username, Password: password(o)}},
	}

	switch o.mode {
	case "good":
	case "env-names":
		// The names (never the values) of the variables it was given, so
		// that a test can see the environment a plugin gets.
		var names []string
		for _, kv := range os.Environ() {
			name, _, _ := strings.Cut(kv, "=")
			names = append(names, name)
		}
		sort.Strings(names)
		resp.Auth = map[string]authConfig{or(o.registry, host(req.Image)): {Username: strings.Join(names, ","), Password: password(o)}}
	case "echo-token":
		resp.Auth = map[string]authConfig{or(o.registry, host(req.Image)): {Username: username, Password: req.ServiceAccountToken}}
	case "empty":
		resp.Auth = nil
	case "anonymous":
		resp.Auth = map[string]authConfig{or(o.registry, host(req.Image)): {}}
	case "no-cache-key-type":
		resp.CacheKeyType = ""
	case "fail-with-password":
		fmt.Fprintf(os.Stderr, "error: login as %s with password %s refused\n", username, o.secret)
		fmt.Fprintf(os.Stdout, "password=%s\n", o.secret)
		return 1
	case "garbage":
		fmt.Fprintf(os.Stdout, "Error: token %s expired {not json at all\n", o.secret)
		return 0
	case "wrong-kind":
		fmt.Fprintf(os.Stdout, `{"apiVersion":%q,"kind":"Secret%s","auth":{"r.io":{"username":"u","password":%q}}}`, apiVersion, o.secret, o.secret)
		return 0
	case "unknown-field":
		fmt.Fprintf(os.Stdout, `{"apiVersion":%q,"kind":"CredentialProviderResponse","cacheKeyType":"Registry","%s":1,"auth":{"r.io":{"username":"u","password":%q}}}`, apiVersion, o.secret, o.secret)
		return 0
	case "wrong-type":
		fmt.Fprintf(os.Stdout, `{"apiVersion":%q,"kind":"CredentialProviderResponse","cacheKeyType":"Registry","auth":{"r.io":{"username":1,"password":%q}}}`, apiVersion, o.secret)
		return 0
	case "secret-api-version":
		fmt.Fprintf(os.Stdout, `{"apiVersion":"%s/v1","kind":"CredentialProviderResponse","cacheKeyType":"Registry"}`, o.secret)
		return 0
	case "oversized-stdout":
		writeRepeated(os.Stdout, o.secret, o.size)
		return 0
	case "oversized-stderr":
		writeRepeated(os.Stderr, o.secret, o.size)
		return 0
	case "orphan":
		// A child inherits stdout and outlives the plugin.
		if _, err := startChild(o, "hang", true); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", o.mode)
		return 2
	}
	fmt.Fprintln(os.Stderr, "fakeplugin: answering for", req.Image)
	if err := json.NewEncoder(os.Stdout).Encode(resp); err != nil {
		return 2
	}
	return 0
}

// startChild runs this binary again in mode, in the same process group.
func startChild(o options, mode string, shareStdout bool) (int, error) {
	cmd := exec.Command(os.Args[0], "-mode="+mode)
	if shareStdout {
		cmd.Stdout = os.Stdout
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	if o.childPIDFile != "" {
		if err := os.WriteFile(o.childPIDFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
			return 0, err
		}
	}
	return cmd.Process.Pid, nil
}

// password is PREFIX-CALL-RANDOM: new at every call.
// countCall adds this run to the -state file, whatever the mode, and
// returns its number.
func countCall(state string) int {
	call := 1
	if state != "" {
		f, err := os.OpenFile(state, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err == nil {
			_, _ = f.Write([]byte{'.'})
			if fi, err := f.Stat(); err == nil {
				call = int(fi.Size())
			}
			_ = f.Close()
		}
	}
	return call
}

func password(o options) string {
	call := o.call
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", o.passwordPrefix, call, hex.EncodeToString(b))
}

func writeRepeated(w io.Writer, s string, size int) {
	chunk := []byte(strings.Repeat(s+" ", 4096/(len(s)+1)+1))
	for written := 0; written < size; written += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

func host(image string) string {
	h, _, _ := strings.Cut(image, "/")
	return h
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
