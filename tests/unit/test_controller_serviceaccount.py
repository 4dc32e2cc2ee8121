"""Service-account controllers' pure parts: which run under which configuration, what a token Secret gets filled
with, and unreadable key files named by their setting."""
import base64

import jwt
import pytest

from kpy_components.api.legacy_tokens import LegacyTokenSigner
from kpy_components.controller_manager import config as cm_config
from kpy_components.controller_manager.controllers.nodeipam import NodeIpamController
from kpy_components.controller_manager.controllers.rootcacertpublisher import RootCACertPublisher
from kpy_components.controller_manager.controllers.serviceaccount import TokenController, read_file
from kpy_components.pki import keys

ACCOUNT = {"metadata": {"name": "robot", "namespace": "ci", "uid": "sa-uid"}}


def test_optional_controllers_run_only_when_configured(tmp_path):
    plain = cm_config.parse({}, "test")
    assert not TokenController.wanted(plain) and not RootCACertPublisher.wanted(plain)
    assert not NodeIpamController.wanted(plain)
    configured = cm_config.parse({"serviceAccount": {"privateKeyFile": "/k", "rootCAFile": "/ca"},
                                  "nodeIPAM": {"allocateNodeCIDRs": True, "clusterCIDR": "10.0.0.0/16"}}, "test")
    assert TokenController.wanted(configured) and RootCACertPublisher.wanted(configured)
    assert NodeIpamController.wanted(configured)


@pytest.fixture
def controller():
    """A TokenController with only what `filled` reads (no API behind it)."""
    token_controller = TokenController.__new__(TokenController)
    token_controller.signer = LegacyTokenSigner(keys.private_pem(keys.generate("rsa-2048")))
    token_controller.root_ca = b"-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n"
    return token_controller


def secret(data=None, uid=None):
    annotations = {"kubernetes.io/service-account.name": "robot"}
    if uid:
        annotations["kubernetes.io/service-account.uid"] = uid
    return {"metadata": {"name": "robot-token", "namespace": "ci", "annotations": annotations},
            "type": "kubernetes.io/service-account-token", "data": data or {}}


def test_an_empty_token_secret_gets_token_namespace_ca_and_the_account_uid(controller):
    filled = controller.filled(secret(), ACCOUNT)
    data = {k: base64.b64decode(v) for k, v in filled["data"].items()}
    assert data["namespace"] == b"ci" and data["ca.crt"] == controller.root_ca
    claims = jwt.decode(data["token"], options={"verify_signature": False})
    assert claims["sub"] == "system:serviceaccount:ci:robot"
    assert claims["kubernetes.io/serviceaccount/secret.name"] == "robot-token"
    assert filled["metadata"]["annotations"]["kubernetes.io/service-account.uid"] == "sa-uid"


def test_a_filled_secret_is_left_alone_and_an_existing_token_is_kept(controller):
    filled = controller.filled(secret(), ACCOUNT)
    assert controller.filled(filled, ACCOUNT) is None
    data = {k: v for k, v in filled["data"].items() if k != "ca.crt"}
    refilled = controller.filled(secret(data, uid="sa-uid"), ACCOUNT)
    assert refilled["data"]["token"] == filled["data"]["token"]
    assert "ca.crt" in refilled["data"]


def test_unreadable_files_are_named_by_their_setting(tmp_path):
    with pytest.raises(ValueError, match=r"serviceAccount.rootCAFile: cannot read .*missing.crt: No such file"):
        read_file(tmp_path / "missing.crt", "serviceAccount.rootCAFile")
