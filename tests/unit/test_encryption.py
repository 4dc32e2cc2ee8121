"""Encryption at rest: every provider round-trips, values at rest hide the plaintext, rotation keeps old data
readable, identity reads plaintext, and bad configurations name the field."""
import base64
import os

import pytest
import yaml

from kpy_components.apiserver.encryption import (DecryptionError, EncryptionConfigError, EncryptionTransformer,
                                                  load_config, parse_config)
from kpy_components.pki.cluster_keys import new_encryption_config

SECRET_KEY = "/registry/secrets/default/db"
PLAINTEXT = b'{"kind":"Secret","data":{"password":"aHVudGVyMg=="},"stringData":"top-secret-value"}'


def _key(size: int = 32) -> str:
    return base64.b64encode(os.urandom(size)).decode()


def _config(*providers, resources=("secrets",)) -> dict:
    return {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
            "resources": [{"resources": list(resources), "providers": list(providers)}]}


def _keyed(provider: str, *names: str, secrets: dict | None = None) -> dict:
    secrets = secrets or {}
    return {provider: {"keys": [{"name": n, "secret": secrets.get(n) or _key()} for n in names]}}


def _transformer(document: dict) -> EncryptionTransformer:
    return EncryptionTransformer(parse_config(document))


@pytest.mark.parametrize("provider", ["aescbc", "aesgcm", "secretbox"])
def test_round_trip_hides_the_plaintext(provider):
    transformer = _transformer(_config(_keyed(provider, "key1")))
    at_rest = transformer.to_storage(SECRET_KEY, PLAINTEXT)
    assert at_rest.startswith(f"k8s:enc:{provider}:v1:key1:".encode())
    assert b"top-secret-value" not in at_rest and b"aHVudGVyMg" not in at_rest
    assert transformer.from_storage(SECRET_KEY, at_rest) == PLAINTEXT


@pytest.mark.parametrize("provider", ["aescbc", "aesgcm", "secretbox"])
def test_each_write_uses_a_fresh_iv_or_nonce(provider):
    transformer = _transformer(_config(_keyed(provider, "key1")))
    assert transformer.to_storage(SECRET_KEY, PLAINTEXT) != transformer.to_storage(SECRET_KEY, PLAINTEXT)


@pytest.mark.parametrize("size", [16, 24, 32])
def test_aescbc_accepts_every_aes_key_size(size):
    transformer = _transformer(_config({"aescbc": {"keys": [{"name": "k", "secret": _key(size)}]}}))
    assert transformer.from_storage(SECRET_KEY, transformer.to_storage(SECRET_KEY, b"x" * 33)) == b"x" * 33


def test_rotation_new_first_key_encrypts_and_old_keys_still_decrypt():
    secrets = {"old": _key(), "new": _key()}
    before = _transformer(_config(_keyed("aescbc", "old", secrets=secrets)))
    old_value = before.to_storage(SECRET_KEY, PLAINTEXT)

    after = _transformer(_config(_keyed("aescbc", "new", "old", secrets=secrets)))
    new_value = after.to_storage(SECRET_KEY, PLAINTEXT)
    assert new_value.startswith(b"k8s:enc:aescbc:v1:new:")
    assert after.from_storage(SECRET_KEY, old_value) == PLAINTEXT
    assert after.from_storage(SECRET_KEY, new_value) == PLAINTEXT
    assert after.is_stale(SECRET_KEY, old_value) and not after.is_stale(SECRET_KEY, new_value)


def test_rotation_across_providers():
    aescbc = _keyed("aescbc", "k1")
    before = _transformer(_config(aescbc))
    old_value = before.to_storage(SECRET_KEY, PLAINTEXT)
    after = _transformer(_config(_keyed("secretbox", "k2"), aescbc))
    assert after.to_storage(SECRET_KEY, PLAINTEXT).startswith(b"k8s:enc:secretbox:v1:k2:")
    assert after.from_storage(SECRET_KEY, old_value) == PLAINTEXT


def test_a_removed_key_cannot_read_and_the_error_names_the_prefix_not_the_value():
    old = _transformer(_config(_keyed("aesgcm", "gone")))
    value = old.to_storage(SECRET_KEY, PLAINTEXT)
    new = _transformer(_config(_keyed("aesgcm", "current")))
    with pytest.raises(DecryptionError, match="k8s:enc:aesgcm:v1:gone:") as caught:
        new.from_storage(SECRET_KEY, value)
    assert "top-secret" not in str(caught.value)


def test_a_key_with_the_same_name_but_other_bytes_fails_clearly():
    value = _transformer(_config(_keyed("aescbc", "k"))).to_storage(SECRET_KEY, PLAINTEXT)
    with pytest.raises(DecryptionError, match="aescbc key 'k' cannot decrypt"):
        _transformer(_config(_keyed("aescbc", "k"))).from_storage(SECRET_KEY, value)


def test_aesgcm_binds_the_value_to_its_storage_key():
    transformer = _transformer(_config(_keyed("aesgcm", "k")))
    value = transformer.to_storage(SECRET_KEY, PLAINTEXT)
    with pytest.raises(DecryptionError):
        transformer.from_storage("/registry/secrets/default/other", value)


def test_tampered_secretbox_value_is_refused():
    transformer = _transformer(_config(_keyed("secretbox", "k")))
    value = bytearray(transformer.to_storage(SECRET_KEY, PLAINTEXT))
    value[-1] ^= 1
    with pytest.raises(DecryptionError, match="secretbox key 'k'"):
        transformer.from_storage(SECRET_KEY, bytes(value))


def test_identity_last_reads_plaintext_written_before_encryption():
    transformer = _transformer(_config(_keyed("aescbc", "k"), {"identity": {}}))
    assert transformer.from_storage(SECRET_KEY, PLAINTEXT) == PLAINTEXT
    assert transformer.to_storage(SECRET_KEY, PLAINTEXT).startswith(b"k8s:enc:aescbc:v1:k:")


def test_identity_first_writes_plaintext_and_still_reads_encrypted_values():
    aescbc = _keyed("aescbc", "k")
    encrypted = _transformer(_config(aescbc)).to_storage(SECRET_KEY, PLAINTEXT)
    decrypting = _transformer(_config({"identity": {}}, aescbc))
    assert decrypting.to_storage(SECRET_KEY, PLAINTEXT) == PLAINTEXT
    assert decrypting.from_storage(SECRET_KEY, encrypted) == PLAINTEXT


def test_plaintext_is_refused_without_identity():
    transformer = _transformer(_config(_keyed("aescbc", "k")))
    with pytest.raises(DecryptionError, match="not encrypted and identity is not a configured provider"):
        transformer.from_storage(SECRET_KEY, PLAINTEXT)


def test_resources_not_listed_are_stored_as_is():
    transformer = _transformer(_config(_keyed("aescbc", "k")))
    assert transformer.to_storage("/registry/configmaps/default/c", PLAINTEXT) == PLAINTEXT
    assert transformer.from_storage("/registry/configmaps/default/c", PLAINTEXT) == PLAINTEXT


@pytest.mark.parametrize("pattern, key, encrypted", [
    ("deployments.apps", "/registry/deployments.apps/ns/web", True),
    ("*.apps", "/registry/statefulsets.apps/ns/db", True),
    ("*.apps", "/registry/configmaps/ns/c", False),
    ("*.", "/registry/configmaps/ns/c", True),
    ("*.", "/registry/deployments.apps/ns/web", False),
    ("*.*", "/registry/leases.coordination.k8s.io/ns/l", True),
])
def test_resource_patterns(pattern, key, encrypted):
    transformer = _transformer(_config(_keyed("aescbc", "k"), resources=(pattern,)))
    assert transformer.to_storage(key, PLAINTEXT).startswith(b"k8s:enc:") is encrypted


def test_first_matching_entry_wins():
    document = _config(_keyed("secretbox", "s"))
    document["resources"].append({"resources": ["*.*"], "providers": [_keyed("aescbc", "a")]})
    transformer = _transformer(document)
    assert transformer.to_storage(SECRET_KEY, PLAINTEXT).startswith(b"k8s:enc:secretbox:")
    assert transformer.to_storage("/registry/configmaps/n/c", PLAINTEXT).startswith(b"k8s:enc:aescbc:")


def test_the_pki_generated_config_loads(tmp_path):
    path = tmp_path / "encryption-config.yaml"
    path.write_bytes(new_encryption_config())
    transformer = load_config(path)
    value = transformer.to_storage(SECRET_KEY, PLAINTEXT)
    assert value.startswith(b"k8s:enc:aescbc:v1:key1:")
    assert transformer.from_storage(SECRET_KEY, value) == PLAINTEXT


def test_bad_configuration_names_every_field():
    document = _config({"aescbc": {"keys": [{"name": "k", "secret": base64.b64encode(b"short").decode()},
                                            {"name": "k", "secret": "!!not base64!!"}]}},
                       {"aesgcm": {"keys": []}}, {"kms": {"name": "x"}}, {"rot13": {}},
                       {"identity": {}, "aescbc": {}})
    with pytest.raises(EncryptionConfigError) as caught:
        parse_config(document, "enc.yaml")
    problems = caught.value.problems
    assert ('resources[0].providers[0].aescbc.keys[0].secret: Invalid value: "REDACTED": secret is not of the '
            'expected length, got 5, expected one of [16 24 32]') in problems
    assert 'resources[0].providers[0].aescbc.keys[1].name: Duplicate value: "k"' in problems
    assert ('resources[0].providers[0].aescbc.keys[1].secret: Invalid value: "REDACTED": secrets must be base64 '
            'encoded') in problems
    assert "resources[0].providers[1].aesgcm.keys: Required value: at least one key" in problems
    assert any(p.startswith("resources[0].providers[2].kms: Unsupported value") for p in problems)
    assert any(p.startswith('resources[0].providers[3]: Unsupported value: "rot13"') for p in problems)
    assert any(p.startswith("resources[0].providers[4]: must set exactly one of") for p in problems)
    assert str(caught.value).startswith("enc.yaml: invalid EncryptionConfiguration:")


def test_wrong_kind_and_missing_resources():
    with pytest.raises(EncryptionConfigError) as caught:
        parse_config({"apiVersion": "v1", "kind": "ConfigMap"})
    assert [p.split(":")[0] for p in caught.value.problems] == ["apiVersion", "kind", "resources"]


def test_secretbox_needs_a_32_byte_key():
    with pytest.raises(EncryptionConfigError, match=r"expected one of \[32\]"):
        parse_config(_config({"secretbox": {"keys": [{"name": "k", "secret": _key(16)}]}}))


def test_unreadable_and_unparsable_files_are_named(tmp_path):
    with pytest.raises(EncryptionConfigError, match="(?s)missing.yaml: .*cannot read the file"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("resources: [\n")
    with pytest.raises(EncryptionConfigError, match="(?s)broken.yaml: .*not valid YAML"):
        load_config(broken)


def test_yaml_document_as_operators_write_it():
    text = f"""
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets, configmaps]
    providers:
      - aesgcm:
          keys:
            - name: key2
              secret: {_key()}
      - identity: {{}}
"""
    transformer = _transformer(yaml.safe_load(text))
    value = transformer.to_storage("/registry/configmaps/kube-system/c", PLAINTEXT)
    assert value.startswith(b"k8s:enc:aesgcm:v1:key2:")
    assert transformer.from_storage("/registry/configmaps/kube-system/c", value) == PLAINTEXT
