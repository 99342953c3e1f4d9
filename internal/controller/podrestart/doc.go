// Package podrestart deletes Pods stuck on an image pull so that their
// owner recreates them with the secret (restartPods: OnPullFailure). It
// holds the only Pod write the controller makes, so that the permission to
// delete Pods is a separate, optional ClusterRole
// (config/rbac-restart-pods, Helm value rbac.restartPods).
//
// +kubebuilder:rbac:groups="",resources=pods,verbs=delete
package podrestart
