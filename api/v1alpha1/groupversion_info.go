// Package v1alpha1 is the pullsecrets.dev/v1alpha1 API: ClusterPullSecret,
// one registry credential kept in every selected namespace and attached to
// the selected ServiceAccounts.
//
// +kubebuilder:object:generate=true
// +groupName=pullsecrets.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of these types.
	GroupVersion = schema.GroupVersion{Group: "pullsecrets.dev", Version: "v1alpha1"}

	// SchemeBuilder registers these types with a scheme.
	SchemeBuilder = (&scheme.Builder{GroupVersion: GroupVersion}).
			Register(&ClusterPullSecret{}, &ClusterPullSecretList{})

	// AddToScheme adds these types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
