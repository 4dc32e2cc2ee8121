"""MutatingAdmissionWebhook and ValidatingAdmissionWebhook: the admissionregistration.k8s.io/v1 webhook
configurations called with an AdmissionReview v1 over TLS, as kube-apiserver calls them.

Per webhook: rules (operations, groups, versions, resources with `*` and `pods/*`, scope), namespaceSelector (the
namespace's labels; a Namespace by its own), objectSelector (the object's or the old object's labels) and
matchConditions (CEL over object, oldObject, request) choose whether it is called; `clientConfig.url`, or
`clientConfig.service` reached at the Service's cluster IP with `<name>.<namespace>.svc` as the TLS name, trusted
through `caBundle`; `timeoutSeconds` (default 10); `failurePolicy` Fail (default: the call's failure refuses the
request) or Ignore; `sideEffects` other than None/NoneOnDryRun refuse dry runs; JSONPatch responses applied (mutating
webhooks in order, those with reinvocationPolicy IfNeeded called once more when a later one changed the object);
warnings passed back to the client. Refusals and failures are worded as upstream's.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import ssl
import uuid
from urllib.parse import urlsplit

import aiohttp
import celpy

from kpy_components.api import errors, meta, patch, selectors
from kpy_components.apiserver.http.context import write_options

from .chain import Attributes

log = logging.getLogger(__name__)
GROUP = "admissionregistration.k8s.io"
_DEFAULT_TIMEOUT = 10
_environment = celpy.Environment()


# --- matching ----------------------------------------------------------------------------------------------------

def _listed(values, wanted: str) -> bool:
    return "*" in (values or ()) or wanted in (values or ())


def _resource_matches(resources, resource: str, subresource: str) -> bool:
    full = f"{resource}/{subresource}" if subresource else resource
    for pattern in resources or ():
        if pattern in ("*/*", full) or (pattern == "*" and not subresource):
            return True
        base, _, sub = pattern.partition("/")
        if sub and (base in ("*", resource)) and sub in ("*", subresource) and subresource:
            return True
    return False


def rule_matches(rule: dict, attributes: Attributes, namespaced: bool) -> bool:
    info = attributes.info
    scope = rule.get("scope") or "*"
    if scope == "Cluster" and namespaced or scope == "Namespaced" and not namespaced:
        return False
    return (_listed(rule.get("operations"), attributes.operation) and _listed(rule.get("apiGroups"), info.api_group)
            and _listed(rule.get("apiVersions"), info.api_version)
            and _resource_matches(rule.get("resources"), info.resource, info.subresource))


def labels_match(selector: dict | None, labels: dict) -> bool:
    if not selector:
        return True
    return selectors.label_selector_from_dict(selector).matches(labels or {})


async def matches(api, attributes: Attributes, rules, namespace_selector, object_selector, excluded=()) -> bool:
    """Whether a write is one that rules (and not excluded rules), a namespaceSelector and an objectSelector pick
    (webhooks' rules, policies' matchConstraints and bindings' matchResources alike)."""
    info = attributes.info
    resource = api.registry.get(info.api_group, info.api_version, info.resource)
    if resource is None:
        return False
    name = attributes.name

    def picked(rule: dict) -> bool:
        names = rule.get("resourceNames")
        return rule_matches(rule, attributes, resource.namespaced) and (not names or name in names)

    if not any(picked(rule) for rule in rules or []) or any(picked(rule) for rule in excluded or []):
        return False
    obj_labels, old_labels = meta.labels_of(attributes.obj or {}), meta.labels_of(attributes.old or {})
    if object_selector and not (labels_match(object_selector, obj_labels) or (
            attributes.old is not None and labels_match(object_selector, old_labels))):
        return False
    if namespace_selector and resource.namespaced:
        try:
            namespace = await api.peek("", "namespaces", "", attributes.namespace)
        except errors.APIError:
            namespace = {}
        return labels_match(namespace_selector, meta.labels_of(namespace))
    if namespace_selector and info.resource == "namespaces" and not info.api_group:
        return labels_match(namespace_selector, obj_labels or old_labels)
    return True


def _program(expression: str):
    return _environment.program(_environment.compile(expression))


def cel_true(expression: str, activation: dict) -> bool:
    """A CEL expression over JSON values; CELEvalError and parse errors propagate (the caller's failure policy)."""
    result = _program(expression).evaluate({k: celpy.json_to_cel(v) for k, v in activation.items()})
    if isinstance(result, celpy.CELEvalError):
        raise result
    return bool(result)


# --- the AdmissionReview -----------------------------------------------------------------------------------------

def review_request(api, attributes: Attributes, dry_run: bool) -> dict:
    info = attributes.info
    resource = api.registry.get(info.api_group, info.api_version, info.resource)
    kind = resource.kind if resource else ""
    group, version = info.api_group, info.api_version
    if resource is not None and info.subresource and (sub := resource.subresource(info.subresource)):
        kind = sub.kind
        if sub.version:
            group, version = sub.group, sub.version
    user = attributes.user
    options_kind = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}.get(
        attributes.operation, "")
    request = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": info.api_group, "version": info.api_version, "resource": info.resource},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "requestResource": {"group": info.api_group, "version": info.api_version, "resource": info.resource},
        "name": attributes.name if attributes.name != "Unknown" else "",
        "operation": attributes.operation,
        "userInfo": {"username": user.name, "uid": user.uid, "groups": list(user.groups),
                     **({"extra": {k: list(v) for k, v in user.extra.items()}} if user.extra else {})},
        "object": attributes.obj, "oldObject": attributes.old, "dryRun": dry_run,
        "options": {"kind": options_kind, "apiVersion": "meta.k8s.io/v1"} if options_kind else None,
    }
    if info.subresource:
        request["subResource"] = request["requestSubResource"] = info.subresource
    if attributes.namespace:
        request["namespace"] = attributes.namespace
    return request


def denied(name: str, status: dict | None) -> errors.APIError:
    """webhookerrors.ToStatusErr: at least 400, the message prefixed with who refused."""
    status = dict(status or {})
    by = f'admission webhook "{name}" denied the request'
    message = status.get("message") or status.get("reason")
    text = f"{by}: {message}" if message else f"{by} without explanation"
    code = status.get("code") or 400
    return errors.APIError(max(code, 400), status.get("reason") or "", text, status.get("details") or {})


def call_failed(name: str, reason: str) -> errors.APIError:
    return errors.internal(f'failed calling webhook "{name}": {reason}')


# --- calling ---------------------------------------------------------------------------------------------------

class Caller:
    """Posts AdmissionReviews; one aiohttp session, a TLS context per caBundle."""

    def __init__(self, api):
        self.api = api
        self._session: aiohttp.ClientSession | None = None
        self._contexts: dict[str, ssl.SSLContext] = {}

    def _context(self, bundle: str | None) -> ssl.SSLContext:
        key = bundle or ""
        context = self._contexts.get(key)
        if context is None:
            if bundle:
                try:
                    pem = base64.b64decode(bundle).decode()
                except (binascii.Error, UnicodeDecodeError):
                    pem = bundle
                context = ssl.create_default_context(cadata=pem)
            else:
                context = ssl.create_default_context()
            self._contexts[key] = context
        return context

    async def _target(self, config: dict) -> tuple[str, str | None]:
        """(URL, TLS server name) of a webhook's clientConfig."""
        if config.get("url"):
            return config["url"], None
        service = config.get("service") or {}
        namespace, name = service.get("namespace", ""), service.get("name", "")
        try:
            found = await self.api.peek("", "services", namespace, name)
        except errors.APIError as error:
            raise RuntimeError(f'service "{namespace}/{name}" not found') from error
        address = (found.get("spec") or {}).get("clusterIP")
        if not address or address == "None":
            raise RuntimeError(f'service "{namespace}/{name}" has no cluster IP')
        path = service.get("path") or "/"
        return f"https://{address}:{service.get('port') or 443}{path}", f"{name}.{namespace}.svc"

    async def call(self, webhook: dict, review: dict) -> dict:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        config = webhook.get("clientConfig") or {}
        url, server_name = await self._target(config)
        timeout = webhook.get("timeoutSeconds") or _DEFAULT_TIMEOUT
        parts = urlsplit(url)
        query = f"{parts.query}&timeout={timeout}s" if parts.query else f"timeout={timeout}s"
        target = parts._replace(query=query).geturl()
        try:
            async with asyncio.timeout(timeout):
                async with self._session.post(target, json=review, ssl=self._context(config.get("caBundle")),
                                              server_hostname=server_name) as response:
                    body = await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"received invalid webhook response: the server responded with "
                                           f"status {response.status}")
        except TimeoutError as error:
            raise RuntimeError(f'failed to call webhook: Post "{target}": context deadline exceeded') from error
        except aiohttp.ClientConnectorError as error:
            reason = "connect: connection refused" if isinstance(error.os_error, ConnectionRefusedError) else \
                str(error.os_error)
            raise RuntimeError(f'failed to call webhook: Post "{target}": dial tcp {error.host}:{error.port}: '
                               f"{reason}") from error
        except aiohttp.ClientError as error:
            raise RuntimeError(f'failed to call webhook: Post "{target}": {error}') from error
        try:
            answer = json.loads(body)
        except ValueError as error:
            raise RuntimeError(f"received invalid webhook response: {error}") from error
        response = answer.get("response") if isinstance(answer, dict) else None
        if not isinstance(response, dict):
            raise RuntimeError("received invalid webhook response: the response is missing")
        if response.get("uid") != review["request"]["uid"]:
            raise RuntimeError(f"expected response.uid=\"{review['request']['uid']}\", got "
                               f"\"{response.get('uid', '')}\"")
        return response

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


# --- the two plugins ---------------------------------------------------------------------------------------------

class _Webhooks:
    plural = ""

    def __init__(self, api, caller: Caller):
        self.api, self.caller = api, caller

    async def _webhooks(self) -> list[dict]:
        configurations = await self.api.list(GROUP, self.plural, resource_version="0")
        return [hook for c in sorted(configurations, key=meta.name_of) for hook in c.get("webhooks") or []]

    async def _applies(self, webhook: dict, attributes: Attributes) -> bool:
        info = attributes.info
        if info.api_group == GROUP and info.resource in ("mutatingwebhookconfigurations",
                                                         "validatingwebhookconfigurations"):
            return False  # upstream never calls webhooks about webhook configurations
        return await matches(self.api, attributes, webhook.get("rules"), webhook.get("namespaceSelector"),
                             webhook.get("objectSelector"))

    def _conditions_hold(self, webhook: dict, attributes: Attributes, request: dict) -> bool:
        activation = {"object": attributes.obj, "oldObject": attributes.old, "request": request}
        for condition in webhook.get("matchConditions") or []:
            if not cel_true(condition.get("expression", "false"), activation):
                return False
        return True

    async def _review(self, webhook: dict, attributes: Attributes) -> dict | None:
        """The webhook's response, or None when it does not apply (or failed under failurePolicy Ignore)."""
        options = write_options.get()
        dry_run = bool(options and options.dry_run)
        name = webhook.get("name", "")
        ignore = webhook.get("failurePolicy") == "Ignore"
        try:
            if not await self._applies(webhook, attributes):
                return None
            request = review_request(self.api, attributes, dry_run)
            if not self._conditions_hold(webhook, attributes, request):
                return None
            if dry_run and webhook.get("sideEffects") not in ("None", "NoneOnDryRun"):
                raise errors.bad_request(f'admission webhook "{name}" does not support dry run')
            return await self.caller.call(webhook, {"apiVersion": "admission.k8s.io/v1",
                                                    "kind": "AdmissionReview", "request": request})
        except errors.APIError:
            raise
        except Exception as error:  # the call failed: the webhook's failure policy decides
            if ignore:
                log.warning("Ignored a failed admission webhook name=%s error=%s", name, error)
                return None
            raise call_failed(name, str(error)) from error

    @staticmethod
    def _warn(response: dict) -> None:
        options = write_options.get()
        if options is not None:
            options.warnings.extend(str(w) for w in response.get("warnings") or [])


class MutatingWebhooks(_Webhooks):
    plural = "mutatingwebhookconfigurations"

    async def admit(self, attributes: Attributes) -> None:
        if attributes.obj is None and attributes.operation != "DELETE":
            return
        webhooks = await self._webhooks()
        reinvoke: list[dict] = []
        changed_after: list[bool] = []
        for webhook in webhooks:
            changed = await self._mutate(webhook, attributes)
            changed_after = [c or changed for c in changed_after]
            if webhook.get("reinvocationPolicy") == "IfNeeded":
                reinvoke.append(webhook)
                changed_after.append(False)
        for webhook, later_change in zip(reinvoke, changed_after, strict=True):
            if later_change:
                await self._mutate(webhook, attributes)

    async def _mutate(self, webhook: dict, attributes: Attributes) -> bool:
        response = await self._review(webhook, attributes)
        if response is None:
            return False
        self._warn(response)
        if not response.get("allowed"):
            raise denied(webhook.get("name", ""), response.get("status"))
        if not response.get("patch") or attributes.obj is None:
            return False
        if response.get("patchType", "JSONPatch") != "JSONPatch":
            raise call_failed(webhook.get("name", ""), f'unsupported patch type "{response.get("patchType")}"')
        try:
            operations = json.loads(base64.b64decode(response["patch"]))
            patched = patch.apply_json_patch(attributes.obj, operations)
        except (ValueError, binascii.Error, errors.APIError) as error:
            raise call_failed(webhook.get("name", ""), f"JSON Patch: {error}") from error
        if patched == attributes.obj:
            return False
        attributes.obj.clear()
        attributes.obj.update(patched)
        return True


class ValidatingWebhooks(_Webhooks):
    plural = "validatingwebhookconfigurations"

    async def validate(self, attributes: Attributes) -> None:
        webhooks = await self._webhooks()
        responses = await asyncio.gather(*(self._review(w, attributes) for w in webhooks))  # in parallel, as upstream
        for webhook, response in zip(webhooks, responses, strict=True):
            if response is None:
                continue
            self._warn(response)
            if not response.get("allowed"):
                raise denied(webhook.get("name", ""), response.get("status"))
