"""Per-request options the store's writes take (Kubernetes' CreateOptions/UpdateOptions/PatchOptions in one) and
the storage-error translation every registry module shares."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from kpy_components.api import errors
from kpy_components.api.resources import ResourceInfo
from kpy_components.apiserver.http.context import Admit, RequestInfo, User, WriteOptions, resolve, write_options
from kpy_components.apiserver.storage import interface as storage

FIELD_VALIDATION = ("Ignore", "Warn", "Strict")


def dry_run_requested(values) -> bool:
    """True when dryRun (query parameter or DeleteOptions.dryRun) asks for a dry run; 400 for a value that is
    not "All", with upstream's wording."""
    for value in values or ():
        if value != "All":
            raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return bool(values)


@dataclass
class WriteContext:
    """Who writes and how. `admit` is called only when `user` and `info` are set (HTTP requests); in-process
    writes (bootstrap, security code) skip admission. `warnings` collects `Warning:` headers for the response."""
    user: User | None = None
    info: RequestInfo | None = None
    admit: Admit | None = None
    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Warn"
    force: bool = False
    warnings: list[str] = field(default_factory=list)
    applying: bool = False  # a server-side apply: managedFields come from the apply, not from an Update entry
    # Paths the body's decoder did not know (protobuf field numbers): reported with the unknown JSON fields.
    body_unknown_fields: list[str] = field(default_factory=list)

    async def admission(self, operation: str, obj: dict | None, old: dict | None) -> None:
        if self.admit and self.user and self.info:
            token = write_options.set(WriteOptions(self.dry_run, self.warnings))
            try:
                await resolve(self.admit(operation, self.info, obj, old, self.user))
            finally:
                write_options.reset(token)


@contextlib.contextmanager
def storage_errors(info: ResourceInfo, name: str = ""):
    """Turn storage exceptions into the API errors Kubernetes answers with."""
    try:
        yield
    except storage.KeyNotFound as exc:
        raise errors.not_found(info.plural, name, info.group) from exc
    except storage.KeyExists as exc:
        raise errors.already_exists(info.plural, name, info.group) from exc
    except storage.Conflict as exc:
        raise errors.conflict(info.plural, name, info.group) from exc
    except storage.Compacted as exc:
        raise errors.gone(f"too old resource version: {exc.requested} ({exc.compacted + 1})") from exc
    except storage.FutureRevision as exc:
        raise errors.APIError(504, "Timeout", f"Too large resource version: {exc.requested}, current: "
                              f"{exc.current}", {"causes": [{"reason": "ResourceVersionTooLarge",
                                                             "message": "Too large resource version"}],
                                                 "retryAfterSeconds": 1}, retry_after=1) from exc
    except storage.InvalidContinueToken as exc:
        raise errors.bad_request(f"invalid continue token: {exc}") from exc
    except storage.Unavailable as exc:
        raise errors.APIError(503, "ServiceUnavailable", f"storage is unavailable: {exc}") from exc
