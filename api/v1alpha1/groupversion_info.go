// Package v1alpha1 is the pullsecrets.dev/v1alpha1 API: ClusterPullSecret,
// one registry credential kept in every selected namespace and attached to
// the selected ServiceAccounts.
//
// +kubebuilder:object:generate=true
// +groupName=pullsecrets.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of these types.
	GroupVersion = schema.GroupVersion{Group: "pullsecrets.dev", Version: "v1alpha1"}

	// SchemeBuilder registers these types with a scheme. It is built from
	// apimachinery only, so that importing the API stays cheap.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds these types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &ClusterPullSecret{}, &ClusterPullSecretList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
