// Package cmdutil holds what every kubectl-pullsecrets subcommand shares: the
// client factory built from the standard kubectl flags, exit statuses, and
// error reporting.
package cmdutil
