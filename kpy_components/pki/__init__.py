"""kpy's PKI: CAs, certificates, kubeconfigs and cluster keys generated on the Ansible controller.

`run` is the entry point the `kpy_pki` Ansible module calls; every error it raises is a `PkiError` whose message
names what is wrong and where.
"""
import datetime
from collections.abc import Mapping
from pathlib import Path

from kpy_components.pki import inventory, profiles
from kpy_components.pki.errors import InventoryError, PkiError, ProfileError, StateError
from kpy_components.pki.reconcile import Change, Result, reconcile
from kpy_components.pki.store import Store

__all__ = ["Change", "InventoryError", "PkiError", "ProfileError", "Result", "StateError", "run"]


def run(
    dest: str | Path,
    profiles_path: str | Path,
    cluster: Mapping,
    hosts: Mapping,
    groups: Mapping,
    renewal_days: int | None = None,
    key_type: str | None = None,
    check: bool = False,
    now: datetime.datetime | None = None,
) -> Result:
    """Bring the PKI directory `dest` up to date; with `check`, only report what would change.

    renewal_days: re-issue leaves expiring within this many days (default: the profiles' renewal_days).
    key_type: leaf key type for every profile (default: each profile's own).
    """
    if renewal_days is not None and (isinstance(renewal_days, bool) or renewal_days <= 0):
        raise ProfileError(f"renewal_days must be a positive number of days, got {renewal_days!r}")
    loaded = profiles.load(profiles_path)
    model = inventory.build(cluster, hosts, groups)
    store = Store(dest)
    result = reconcile(store, loaded, model, renewal_days, key_type, now)
    if not check:
        store.commit()
    return result
