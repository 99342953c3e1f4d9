package manager

// The metrics endpoint authenticates scrapers by TokenReview and authorizes
// them by SubjectAccessReview (controller-runtime's metrics/filters).
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
