"""CustomResourceDefinitions and the custom resources they define (apiextensions.k8s.io/v1)."""
