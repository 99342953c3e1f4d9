package cmdutil

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pullsecrets/pullsecrets/internal/readlimit"
	"github.com/pullsecrets/pullsecrets/internal/registrycheck"
)

// VerifyFlags are the registry flags of every command with --verify.
type VerifyFlags struct {
	// InsecureRegistries are hosts allowed over plain HTTP or with an
	// unverified certificate (--insecure-registry, repeatable).
	InsecureRegistries []string
	// CAFile is a PEM file of CAs to trust besides the system's
	// (--registry-ca-file).
	CAFile string
	// Timeout bounds the check of one image (--verify-timeout).
	Timeout time.Duration
}

// AddVerifyFlags adds --insecure-registry, --registry-ca-file and
// --verify-timeout to cmd.
func AddVerifyFlags(cmd *cobra.Command, v *VerifyFlags) {
	fl := cmd.Flags()
	fl.StringArrayVar(&v.InsecureRegistries, "insecure-registry", nil, "with --verify: a registry host[:port] to reach over plain HTTP or without verifying its certificate (repeatable)")
	fl.StringVar(&v.CAFile, "registry-ca-file", "", "with --verify: a PEM file of CA certificates to trust besides the system's")
	fl.DurationVar(&v.Timeout, "verify-timeout", 10*time.Second, "with --verify: how long the check of one image may take")
	_ = cmd.RegisterFlagCompletionFunc("registry-ca-file", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return []cobra.Completion{"pem", "crt"}, cobra.ShellCompDirectiveFilterFileExt
	})
}

// Options returns the registrycheck options: the system's CAs plus those of
// --registry-ca-file.
func (v *VerifyFlags) Options() (registrycheck.Options, error) {
	opts := registrycheck.Options{Timeout: v.Timeout, InsecureRegistries: v.InsecureRegistries}
	if v.CAFile == "" {
		return opts, nil
	}
	pem, err := readlimit.ReadSecretFile(v.CAFile)
	if tooLarge, ok := errors.AsType[*readlimit.TooLargeError](err); ok {
		tooLarge.Why = "for a CA bundle"
		return opts, fmt.Errorf("--registry-ca-file %s: %s", v.CAFile, tooLarge.Problem())
	}
	if err != nil {
		return opts, fmt.Errorf("read registry CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return opts, fmt.Errorf("read registry CA file %s: no PEM certificate in it", v.CAFile)
	}
	opts.RootCAs = pool
	return opts, nil
}
