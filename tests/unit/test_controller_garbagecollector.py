"""The garbage collector's decisions (attemptToDeleteItem): keep, unlink or delete a dependent from its owners'
states, and the propagation policy of the delete."""
import pytest

from kpy_components.controller_manager.controllers.garbagecollector import (ABSENT, SOLID, WAITING, Decision,
                                                                            decide, group_of)


def test_no_owners_means_nothing_to_collect():
    assert decide({}, has_dependents=False) == Decision("keep")


def test_an_existing_owner_keeps_the_dependent():
    assert decide({"a": SOLID}, has_dependents=True) == Decision("keep")


@pytest.mark.parametrize("gone", [ABSENT, WAITING])
def test_a_surviving_owner_keeps_it_but_references_to_others_are_dropped(gone):
    assert decide({"a": SOLID, "b": gone}, has_dependents=False) == Decision("unlink", drop=("b",))


def test_all_owners_gone_deletes_in_the_background():
    assert decide({"a": ABSENT, "b": ABSENT}, has_dependents=True) == Decision("delete", "Background")


def test_a_foreground_owner_makes_a_dependent_with_dependents_go_in_foreground_too():
    assert decide({"a": WAITING}, has_dependents=True) == Decision("delete", "Foreground")
    assert decide({"a": WAITING}, has_dependents=False) == Decision("delete", "Background")


@pytest.mark.parametrize("finalizer, policy", [("orphan", "Orphan"), ("foregroundDeletion", "Foreground")])
def test_a_dependent_asking_for_a_policy_with_its_finalizer_gets_it(finalizer, policy):
    assert decide({"a": ABSENT}, has_dependents=False, finalizers=(finalizer,)) == Decision("delete", policy)


@pytest.mark.parametrize("api_version, group", [("v1", ""), ("apps/v1", "apps"),
                                                ("discovery.k8s.io/v1", "discovery.k8s.io")])
def test_group_of_api_version(api_version, group):
    assert group_of(api_version) == group
