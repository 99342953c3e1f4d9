// Package controller keeps ClusterPullSecrets true: a copy of the source
// Secret in every selected namespace, its name on every selected
// ServiceAccount, old copies retired once no Pod lists them, and, on
// request, Pods that failed before the fix replaced.
//
// Two reconcilers share the work. The namespace reconciler, keyed by
// namespace, does every write for all ClusterPullSecrets in that namespace,
// so a large rollout runs in parallel across namespaces and every
// ServiceAccount is written at most once per change. The ClusterPullSecret
// reconciler validates the source, owns the finalizer, and publishes status
// from what the namespace reconcilers report, at most once per
// StatusInterval, so status writes do not grow with the number of
// namespaces.
//
// Reads come from informer caches only: Namespaces, ServiceAccounts, Pods
// (stripped to what restartPods and retirement need), the copies as
// metadata only (selected by the managed-by label, so unrelated Secrets are
// never cached), and source Secrets through a second cache limited to the
// source namespaces, which is the only place the controller reads Secret
// data.
package controller
