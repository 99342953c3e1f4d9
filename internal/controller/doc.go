// Package controller keeps ClusterPullSecrets true: a copy of the source
// Secret in every selected namespace, its name on every selected
// ServiceAccount, old copies retired once nothing uses them, and, on
// request, Pods that failed before the fix replaced.
//
// Decisions are made by package planner, a pure function of what the
// caches show of one namespace. The namespace reconciler reads a snapshot,
// plans, writes in the plan's order (stopping at the first failure), and
// reports each ClusterPullSecret's state there. The ClusterPullSecret
// reconciler owns the finalizer and computes status from those reports,
// or from the caches for namespaces with none. docs/controller.md lists
// the invariants and what enforces each.
//
// Reads come from caches only: Namespaces, ServiceAccounts, the
// ClusterPullSecrets (unstructured, decoded one by one so that an object
// that does not decode never stops the others), the copies as metadata
// selected by label, source Secrets through a cache limited to the source
// namespaces, and Pods and workload templates as small records (package
// usage).
package controller
