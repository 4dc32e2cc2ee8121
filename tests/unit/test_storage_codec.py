"""Objects and continue tokens at rest (storage/codec.py) and the preconditions of read-modify-write."""
import base64

import pytest

from kpy_components.apiserver.storage.codec import (
    CorruptObject,
    ObjectCodec,
    decode_continue,
    encode_continue,
    prefix_end,
)
from kpy_components.apiserver.storage.interface import Conflict, InvalidContinueToken, Preconditions
from kpy_components.apiserver.storage.updating import check_preconditions


class Reversing:
    """Stands in for an encryption Transformer: reverses the bytes and records the keys it was given."""

    def __init__(self):
        self.keys = []

    def to_storage(self, key, data):
        self.keys.append(key)
        return data[::-1]

    def from_storage(self, key, data):
        self.keys.append(key)
        return data[::-1]


def test_objects_are_stored_without_resource_version_and_read_back_with_the_revision():
    codec = ObjectCodec()
    original = {"metadata": {"name": "a", "resourceVersion": "5"}, "data": {"k": "ü"}}
    stored = codec.encode("/registry/configmaps/ns/a", original)
    assert b"resourceVersion" not in stored
    assert original["metadata"]["resourceVersion"] == "5"  # the caller's object is not changed
    assert codec.decode("/registry/configmaps/ns/a", stored, 9) == {
        "metadata": {"name": "a", "resourceVersion": "9"}, "data": {"k": "ü"}}


def test_the_transformer_sees_every_value_with_its_key():
    transformer = Reversing()
    codec = ObjectCodec(transformer)
    stored = codec.encode("/registry/secrets/ns/s", {"metadata": {"name": "s"}})
    assert stored.startswith(b"}")
    assert codec.decode("/registry/secrets/ns/s", stored, 3)["metadata"]["resourceVersion"] == "3"
    assert transformer.keys == ["/registry/secrets/ns/s"] * 2


@pytest.mark.parametrize("data, problem", [(b"{not json", "not JSON"), (b"[1, 2]", "not an object")])
def test_undecodable_values_name_the_key(data, problem):
    with pytest.raises(CorruptObject, match=f"/registry/pods/ns/x.*{problem}"):
        ObjectCodec().decode("/registry/pods/ns/x", data, 1)


def test_a_failing_transformer_is_reported_as_corrupt_data_for_the_key():
    class Failing:
        def from_storage(self, key, data):
            raise ValueError("MAC check failed")

    with pytest.raises(CorruptObject, match="/registry/secrets/ns/s cannot be decoded: MAC check failed"):
        ObjectCodec(Failing()).decode("/registry/secrets/ns/s", b"x", 1)


def test_continue_tokens_round_trip_relative_to_the_prefix():
    token = encode_continue("/registry/pods/", 42, "/registry/pods/ns/b\0")
    assert "/registry" not in base64.urlsafe_b64decode(token + "==").decode()
    assert decode_continue("/registry/pods/", token) == (42, "/registry/pods/ns/b\0")
    # The same token given for another prefix stays inside that prefix.
    assert decode_continue("/registry/secrets/", token) == (42, "/registry/secrets/ns/b\0")


@pytest.mark.parametrize("token", ["", "!!!", base64.urlsafe_b64encode(b'{"rv": 0, "start": "a"}').decode(),
                                   base64.urlsafe_b64encode(b'{"rv": "7", "start": "a"}').decode(),
                                   base64.urlsafe_b64encode(b'{"start": "a"}').decode(),
                                   base64.urlsafe_b64encode(b"[1]").decode()])
def test_bad_continue_tokens_are_refused(token):
    with pytest.raises(InvalidContinueToken, match="continue token"):
        decode_continue("/registry/pods/", token)


def test_prefix_end_is_the_first_key_after_the_prefix():
    assert prefix_end("/registry/pods/") == "/registry/pods0"
    assert "/registry/pods/" < "/registry/pods/\U0010ffff" < prefix_end("/registry/pods/")
    with pytest.raises(ValueError):
        prefix_end("")


def test_preconditions_name_what_differs():
    obj = {"metadata": {"uid": "u1", "resourceVersion": "7"}}
    check_preconditions(obj, None)
    check_preconditions(obj, Preconditions(uid="u1", resource_version="7"))
    with pytest.raises(Conflict, match="UID in precondition: u2, UID in object meta: u1"):
        check_preconditions(obj, Preconditions(uid="u2"))
    with pytest.raises(Conflict, match="ResourceVersion in precondition: 6, ResourceVersion in object meta: 7"):
        check_preconditions(obj, Preconditions(resource_version="6"))
