"""The namespace controller's conditions as Kubernetes words them."""
from collections import Counter

from kpy_components.controller_manager.controllers.namespace import Pass


def test_a_clean_pass_sets_every_condition_false_with_kubernetes_reasons():
    conditions = Pass().conditions()
    assert Pass().done
    assert conditions == {
        "NamespaceDeletionDiscoveryFailure": ("False", "ResourcesDiscovered", "All resources successfully discovered"),
        "NamespaceDeletionGroupVersionParsingFailure": ("False", "ParsedGroupVersions",
                                                        "All legacy kube types successfully parsed"),
        "NamespaceDeletionContentFailure": ("False", "ContentDeleted",
                                            "All content successfully deleted, may be waiting on finalization"),
        "NamespaceContentRemaining": ("False", "ContentRemoved", "All content successfully removed"),
        "NamespaceFinalizersRemaining": ("False", "ContentHasNoFinalizers",
                                         "All content-preserving finalizers finished")}


def test_remaining_content_failures_and_finalizers_are_reported():
    outcome = Pass(discovery_failures={"metrics.k8s.io/v1beta1": "503 unavailable"},
                   deletion_failures=["widgets.example.com: 500 boom"],
                   remaining=Counter({"pods": 2, "deployments.apps": 1}), finalizers=Counter({"example.com/x": 3}))
    conditions = outcome.conditions()
    assert not outcome.done
    assert conditions["NamespaceDeletionDiscoveryFailure"] == (
        "True", "DiscoveryFailed", "Discovery failed for some groups, 1 failing: unable to retrieve the complete "
        "list of server APIs: metrics.k8s.io/v1beta1: 503 unavailable")
    assert conditions["NamespaceDeletionContentFailure"] == (
        "True", "ContentDeletionFailed", "Failed to delete all resource types, 1 remaining: widgets.example.com: "
        "500 boom")
    assert conditions["NamespaceContentRemaining"] == (
        "True", "SomeResourcesRemain", "Some resources are remaining: deployments.apps has 1 resource instances, "
        "pods has 2 resource instances")
    assert conditions["NamespaceFinalizersRemaining"] == (
        "True", "SomeFinalizersRemain", "Some content in the namespace has finalizers remaining: example.com/x in 3 "
        "resource instances")
