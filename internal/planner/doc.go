// Package planner decides every write the controller makes in one
// namespace: copies to create, update or delete, one imagePullSecrets edit
// per ServiceAccount, Pods to restart, and each ClusterPullSecret's state
// there. It is pure: a Snapshot of what the caches show goes in, a Plan
// comes out, and the same Snapshot, in any order, always gives the same
// Plan. The reconciler reads, plans, writes and reports; docs/controller.md
// lists the invariants the plans keep and the tests that prove them.
package planner
