"""Subresources with behaviour of their own: */scale (autoscaling/v1 Scale), pods/eviction (PodDisruptionBudgets),
pods/binding, namespaces/finalize and serviceaccounts/token. (*/status is the store's status path.)"""
from __future__ import annotations

import dataclasses

from kpy_components.api import errors, meta, selectors
from kpy_components.api.meta import field_required
from kpy_components.apiserver.http.context import resolve

from kpy_components.apiserver.crds import custom

from . import patching
from .api import API
from .context import WriteContext, dry_run_requested
from .store import Store
from .strategies import certificates, podspec


def success(code: int | None = 201, details: dict | None = None) -> dict:
    """A Success Status (DELETE answers without a code, as Kubernetes does)."""
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if code is not None:
        status["code"] = code
    if details:
        status["details"] = details
    return status


# --- scale -----------------------------------------------------------------------------------------------------

def to_scale(obj: dict) -> dict:
    """The autoscaling/v1 Scale view of a workload; status.selector is the label selector as a string."""
    metadata = obj.get("metadata") or {}
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    selector = spec.get("selector")
    if isinstance(selector, dict) and "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}  # replication controllers use a plain map
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: metadata[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in metadata},
            "spec": {"replicas": spec.get("replicas", 0)},
            "status": {"replicas": status.get("replicas", 0),
                       "selector": selectors.format_label_selector(selector) if selector else ""}}


def _scale_of(store: Store, obj: dict) -> dict:
    """A workload's Scale, or a custom resource's from its CRD's scale paths."""
    if store.info.extra.get("scale") is not None:
        return custom.to_scale(store.info, obj)
    return to_scale(obj)


def _with_replicas(store: Store, current: dict, scale) -> dict:
    if not isinstance(scale, dict):
        raise errors.bad_request("the request body must be a Scale object")
    wanted = (scale.get("metadata") or {}).get("resourceVersion")
    if wanted and wanted != current["metadata"].get("resourceVersion"):
        raise errors.conflict(store.info.qualified, meta.name_of(current))
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise errors.invalid("Scale", meta.name_of(current), [meta.field_invalid(
            "spec.replicas", replicas, "must be greater than or equal to 0")], "autoscaling")
    if store.info.extra.get("scale") is not None:
        custom.set_replicas(store.info, current, replicas)
    else:
        current.setdefault("spec", {})["replicas"] = replicas
    meta.metadata(current).pop("resourceVersion", None)
    return current


async def get_scale(store: Store, namespace: str, name: str) -> dict:
    return _scale_of(store, await store.get(namespace, name))


async def update_scale(ctx: WriteContext, store: Store, namespace: str, name: str, scale) -> dict:
    stored = await store.write(ctx, namespace, name, lambda current: _with_replicas(store, current, scale), "scale")
    return _scale_of(store, stored)


async def patch_scale(ctx: WriteContext, store: Store, namespace: str, name: str, patch_type: str, body) -> dict:
    patching.check_patch(patch_type, body)

    def desired(current: dict) -> dict:
        scale = patching.apply_patch(ctx, store.info, patch_type, _scale_of(store, current), body, "scale",
                                     kind="Scale")
        return _with_replicas(store, current, scale)
    return _scale_of(store, await store.write(ctx, namespace, name, desired, "scale"))


# --- certificatesigningrequests/approval -------------------------------------------------------------------------

def _with_conditions(current: dict, requested) -> dict:
    """/approval changes the conditions and nothing else (upstream's approval strategy)."""
    if not isinstance(requested, dict):
        raise errors.bad_request("the request body must be a CertificateSigningRequest object")
    wanted = (requested.get("metadata") or {}).get("resourceVersion")
    if wanted and wanted != current["metadata"].get("resourceVersion"):
        raise errors.conflict("certificatesigningrequests", meta.name_of(current), "certificates.k8s.io")
    result = meta.deep_copy(current)
    conditions = meta.deep_copy((requested.get("status") or {}).get("conditions") or [])
    result.setdefault("status", {})["conditions"] = certificates.with_condition_times(conditions)
    return result


async def update_approval(ctx: WriteContext, store: Store, name: str, body) -> dict:
    return await store.write(ctx, "", name, lambda current: _with_conditions(current, body), "approval")


async def patch_approval(ctx: WriteContext, store: Store, name: str, patch_type: str, body) -> dict:
    patching.check_patch(patch_type, body)

    def desired(current: dict) -> dict:
        requested = patching.apply_patch(ctx, store.info, patch_type, meta.deep_copy(current), body, "approval")
        return _with_conditions(current, requested)
    return await store.write(ctx, "", name, desired, "approval")


# --- eviction --------------------------------------------------------------------------------------------------

_VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


async def evict(ctx: WriteContext, api: API, namespace: str, name: str, eviction) -> dict:
    """Delete the pod unless a PodDisruptionBudget forbids it (429, which `kubectl drain` retries every 5 s).
    Pods that are not running (pending, finished, already terminating) are evicted regardless, as in Kubernetes.
    Admission sees the CREATE of the Eviction (NodeRestriction: a node evicts only pods bound to it); the pod's
    deletion that follows is part of that request, not admitted again."""
    if not isinstance(eviction, dict):
        raise errors.bad_request("the request body must be an Eviction object")
    options = eviction.get("deleteOptions") or {}
    if dry_run_requested(options.get("dryRun")):  # how kubectl drain --dry-run=server asks (no query parameter)
        ctx = dataclasses.replace(ctx, dry_run=True)
    await ctx.admission("CREATE", eviction, None)
    pods = api.store("", "pods")
    pod = await pods.get(namespace, name)
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Running" and not pod["metadata"].get("deletionTimestamp"):
        await _take_disruption(ctx, api, namespace, pod)
    await pods.delete(dataclasses.replace(ctx, admit=None), namespace, name, options)
    return success()


async def _take_disruption(ctx: WriteContext, api: API, namespace: str, pod: dict) -> None:
    budgets = api.store("policy", "poddisruptionbudgets")
    listed = await budgets.list(namespace)
    labels = meta.labels_of(pod)
    matching = [b for b in listed["items"]
                if selectors.label_selector_from_dict((b.get("spec") or {}).get("selector")).matches(labels)]
    if not matching:
        return
    if len(matching) > 1:
        raise errors.internal("This pod has more than one PodDisruptionBudget, which the eviction subresource "
                              "does not support.")
    budget = matching[0]

    def take(current: dict) -> dict:
        status = current.get("status") or {}
        generation = (current.get("metadata") or {}).get("generation", 0)
        if status.get("observedGeneration", 0) < generation:
            raise _violation(f"the disruption budget {meta.name_of(current)} is still being processed by the "
                             "server.")
        if status.get("disruptionsAllowed", 0) <= 0:
            raise _violation(f"The disruption budget {meta.name_of(current)} needs "
                             f"{status.get('desiredHealthy', 0)} healthy pods and has "
                             f"{status.get('currentHealthy', 0)} currently")
        status = dict(status, disruptionsAllowed=status["disruptionsAllowed"] - 1)
        status.setdefault("disruptedPods", {})[meta.name_of(pod)] = meta.now_rfc3339()
        return {**current, "status": status}

    if not ctx.dry_run:
        await budgets.write(WriteContext(), namespace, meta.name_of(budget), take, "status")
    else:
        take(budget)


def _violation(cause: str) -> errors.APIError:
    # No Retry-After, as upstream: with one, client-go retries the 429 itself (silently, up to 10 times) before
    # `kubectl drain` sees it and reports "error when evicting ... (will retry after 5s)".
    error = errors.too_many_requests(_VIOLATION, retry_after=0)
    error.details = {"causes": [{"reason": "DisruptionBudget", "message": cause}]}
    return error


# --- binding ---------------------------------------------------------------------------------------------------

async def bind(ctx: WriteContext, api: API, namespace: str, name: str, binding) -> dict:
    """Assign the pod to a node (the scheduler's write): only once, never to a pod being deleted."""
    target = (binding or {}).get("target") if isinstance(binding, dict) else None
    if not isinstance(target, dict) or not target.get("name"):
        raise errors.invalid("Binding", name, [field_required("target.name")])
    node = target["name"]

    def assign(current: dict) -> dict:
        spec = current.setdefault("spec", {})
        if current["metadata"].get("deletionTimestamp"):
            raise errors.conflict("pods/binding", name, why=f"pod {name} is being deleted, cannot be assigned to "
                                  "a host")
        if spec.get("nodeName"):
            raise errors.conflict("pods/binding", name, why=f'pod {name} is already assigned to node '
                                  f'"{spec["nodeName"]}"')
        spec["nodeName"] = node
        conditions = [c for c in (current.setdefault("status", {}).get("conditions") or [])
                      if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": meta.now_rfc3339()})
        current["status"]["conditions"] = conditions
        return current

    await api.store("", "pods").write(ctx, namespace, name, assign, "binding")
    return success()


# --- pods/ephemeralcontainers ---------------------------------------------------------------------------------

async def update_ephemeral_containers(ctx: WriteContext, store: Store, namespace: str, name: str, wanted) -> dict:
    """`kubectl debug`: only spec.ephemeralContainers changes, and only by adding containers."""

    def desired(current: dict) -> dict:
        pod = wanted(meta.deep_copy(current))
        if not isinstance(pod, dict):
            raise errors.bad_request("the request body must be a Pod object")
        version = (pod.get("metadata") or {}).get("resourceVersion")
        if version and version != current["metadata"].get("resourceVersion"):
            raise errors.conflict("pods", name)
        before = (current.get("spec") or {}).get("ephemeralContainers") or []
        after = (pod.get("spec") or {}).get("ephemeralContainers") or []
        for container in after:
            podspec.default_container(container)
        if after[:len(before)] != before:
            raise errors.invalid("Pod", name, [meta.field_forbidden("spec.ephemeralContainers",
                                                                    "existing ephemeral containers may not be "
                                                                    "changed")])
        current.setdefault("spec", {})["ephemeralContainers"] = after
        return current
    return await store.write(ctx, namespace, name, desired, "ephemeralcontainers")


# --- namespaces/finalize ---------------------------------------------------------------------------------------

async def finalize(ctx: WriteContext, store: Store, name: str, namespace_obj) -> dict:
    """Set spec.finalizers (the namespace controller empties it); a terminating namespace with none left goes."""
    if not isinstance(namespace_obj, dict):
        raise errors.bad_request("the request body must be a Namespace object")
    finalizers = (namespace_obj.get("spec") or {}).get("finalizers") or []

    def set_finalizers(current: dict) -> dict:
        current.setdefault("spec", {})["finalizers"] = list(finalizers)
        if not finalizers:
            del current["spec"]["finalizers"]
        return current
    return await store.write(ctx, "", name, set_finalizers, "finalize")


# --- serviceaccounts/token -------------------------------------------------------------------------------------

async def request_token(ctx: WriteContext, api: API, issue_token, namespace: str, name: str,
                        token_request) -> dict:
    """A token for the service account; admission sees the CREATE of the TokenRequest first (NodeRestriction: a
    node asks only for tokens bound to pods bound to it)."""
    if issue_token is None:
        raise errors.APIError(501, "NotImplemented", "token issuing is not configured on this API server (no "
                              "service-account signing key)")
    if not isinstance(token_request, dict):
        raise errors.bad_request("the request body must be a TokenRequest object")
    await ctx.admission("CREATE", token_request, None)
    account = await api.store("", "serviceaccounts").get(namespace, name)
    return await resolve(issue_token(account, token_request))
