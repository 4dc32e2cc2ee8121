"""apps/v1 (deployments, replicasets, daemonsets, statefulsets) and batch/v1 (jobs, cronjobs) strategies."""
from __future__ import annotations

import json

from kpy_components.api import meta, selectors
from kpy_components.api.errors import APIError, Cause
from kpy_components.api.meta import field_invalid, field_required

from .. import validation
from ..strategy import Strategy
from . import jobpolicies, podspec


def _go_map(labels: dict) -> str:
    """How Go's %#v prints map[string]string in Kubernetes' messages."""
    inner = ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in sorted(labels.items()))
    return f"map[string]string{{{inner}}}"


def validate_selector_and_template(spec: dict, restart_policies: list[str], path: str = "spec") -> list[Cause]:
    """selector required, non-empty and matching the template's labels; the template's pod spec valid."""
    causes = []
    selector = spec.get("selector")
    template = spec.get("template")
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(field_required(f"{path}.selector") if not selector else
                      field_invalid(f"{path}.selector", selector, "empty selector is invalid for deployment"))
    if not isinstance(template, dict):
        return causes + [field_required(f"{path}.template")]
    labels = meta.labels_of(template)
    if isinstance(selector, dict) and (selector.get("matchLabels") or selector.get("matchExpressions")):
        try:
            matches = selectors.label_selector_from_dict(selector).matches(labels)
        except APIError as error:
            causes.append(field_invalid(f"{path}.selector", selector, error.message))
        else:
            if not matches:
                causes.append(Cause(f"{path}.template.metadata.labels",
                                    f"Invalid value: {_go_map(labels)}: `selector` does not match template `labels`"))
    causes.extend(validation.labels(labels or None, f"{path}.template.metadata.labels"))
    causes.extend(podspec.validate_pod_spec(template.get("spec"), f"{path}.template.spec", restart_policies))
    return causes


class _Workload(Strategy):
    tracks_generation = True
    REPLICAS = True

    def default(self, obj):
        spec = obj.setdefault("spec", {})
        if self.REPLICAS:
            spec.setdefault("replicas", 1)
        podspec.default_template(spec.get("template"))
        spec.setdefault("revisionHistoryLimit", 10)

    def validate(self, obj):
        spec = obj.get("spec") or {}
        causes = validation.non_negative(spec.get("replicas"), "spec.replicas") if self.REPLICAS else []
        causes.extend(validation.non_negative(spec.get("minReadySeconds"), "spec.minReadySeconds"))
        return causes + validate_selector_and_template(spec, ["Always"])

    def validate_immutable(self, new, old):
        old_selector = (old.get("spec") or {}).get("selector")
        new_selector = (new.get("spec") or {}).get("selector")
        if old_selector != new_selector:
            return [field_invalid("spec.selector", new_selector, "field is immutable")]
        return []


class DeploymentStrategy(_Workload):
    def default(self, obj):
        super().default(obj)
        spec = obj["spec"]
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
        spec.setdefault("progressDeadlineSeconds", 600)

    def validate(self, obj):
        causes = super().validate(obj)
        strategy = (obj.get("spec") or {}).get("strategy") or {}
        causes.extend(validation.one_of(strategy.get("type"), "spec.strategy.type", ["Recreate", "RollingUpdate"]))
        if strategy.get("type") == "Recreate" and strategy.get("rollingUpdate"):
            causes.append(meta.field_forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy "
                                               "`type` is 'Recreate'"))
        return causes


class ReplicaSetStrategy(_Workload):
    def default(self, obj):
        super().default(obj)
        obj["spec"].pop("revisionHistoryLimit", None)


class DaemonSetStrategy(_Workload):
    REPLICAS = False

    def default(self, obj):
        super().default(obj)
        update = obj["spec"].setdefault("updateStrategy", {})
        update.setdefault("type", "RollingUpdate")
        if update["type"] == "RollingUpdate":
            rolling = update.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", 1)
            rolling.setdefault("maxSurge", 0)


class StatefulSetStrategy(_Workload):
    def default(self, obj):
        super().default(obj)
        spec = obj["spec"]
        spec.setdefault("podManagementPolicy", "OrderedReady")
        update = spec.setdefault("updateStrategy", {})
        update.setdefault("type", "RollingUpdate")
        if update["type"] == "RollingUpdate":
            update.setdefault("rollingUpdate", {}).setdefault("partition", 0)
        policy = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
        if isinstance(policy, dict):
            policy.setdefault("whenDeleted", "Retain")
            policy.setdefault("whenScaled", "Retain")
        for template in spec.get("volumeClaimTemplates") or []:
            if isinstance(template, dict):  # as the embedded PersistentVolumeClaim reads back upstream
                template.setdefault("apiVersion", "v1")
                template.setdefault("kind", "PersistentVolumeClaim")
                if isinstance(template.get("spec"), dict):
                    template["spec"].setdefault("volumeMode", "Filesystem")
                template.setdefault("status", {}).setdefault("phase", "Pending")

    def validate(self, obj):
        policy = (obj.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
        path = "spec.persistentVolumeClaimRetentionPolicy"
        return super().validate(obj) + [
            meta.field_not_supported(f"{path}.{when}", policy.get(when), ["Retain", "Delete"])
            for when in ("whenDeleted", "whenScaled") if policy.get(when) not in ("Retain", "Delete")]

    def validate_immutable(self, new, old):
        """Only replicas, template, updateStrategy, minReadySeconds, ordinals and the PVC retention policy change."""
        mutable = ("replicas", "template", "updateStrategy", "minReadySeconds", "ordinals",
                   "persistentVolumeClaimRetentionPolicy", "revisionHistoryLimit")

        def frozen(spec):
            return {k: v for k, v in (spec or {}).items() if k not in mutable}
        if frozen(new.get("spec")) != frozen(old.get("spec")):
            return [meta.field_forbidden("spec", "updates to statefulset spec for fields other than 'replicas', "
                                         "'ordinals', 'template', 'updateStrategy', "
                                         "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
                                         "forbidden")]
        return []


_JOB_RESTART = ["OnFailure", "Never"]
_COMPLETION_MODES = ["NonIndexed", "Indexed"]
_MAX_INDEXED = 100_000  # completions and parallelism of an Indexed Job (upstream's maxParallelismForIndexedJob)
_MAX_INT32 = 2**31 - 1


def default_backoff_limit(spec: dict) -> None:
    """6, or no global limit (MaxInt32) when failures are limited per index."""
    spec.setdefault("backoffLimit", _MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6)


def default_job_spec(spec: dict, uid: str | None) -> None:
    """Job defaults; with `uid` (create), the generated selector and template labels Kubernetes adds unless
    manualSelector is set."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1  # neither set: one pod; parallelism alone means a work queue
    spec.setdefault("parallelism", 1)
    default_backoff_limit(spec)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") is not None
                    else "TerminatingOrFailed")
    template = spec.get("template")
    podspec.default_template(template)
    if uid and isinstance(template, dict) and not spec.get("manualSelector"):
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        labels = meta.metadata(template).setdefault("labels", {})
        labels.update({"batch.kubernetes.io/controller-uid": uid, "controller-uid": uid})


class JobStrategy(Strategy):
    tracks_generation = True

    def default(self, obj):
        default_job_spec(obj.setdefault("spec", {}), None)

    def prepare_for_create(self, obj):
        spec = obj.setdefault("spec", {})
        default_job_spec(spec, meta.metadata(obj).get("uid"))
        template = spec.get("template")
        if isinstance(template, dict):
            labels = meta.metadata(template).setdefault("labels", {})
            labels.setdefault("batch.kubernetes.io/job-name", meta.name_of(obj))
            labels.setdefault("job-name", meta.name_of(obj))
        super().prepare_for_create(obj)

    def validate(self, obj):
        spec = obj.get("spec") or {}
        causes = []
        for field in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds"):
            causes.extend(validation.non_negative(spec.get(field), f"spec.{field}"))
        mode = spec.get("completionMode", "NonIndexed")
        if mode not in _COMPLETION_MODES:
            causes.append(meta.field_not_supported("spec.completionMode", mode, _COMPLETION_MODES))
        elif mode == "Indexed":
            if spec.get("completions") is None:
                causes.append(field_required("spec.completions", "when completion mode is Indexed"))
            for field in ("completions", "parallelism"):
                if isinstance(spec.get(field), int) and spec[field] > _MAX_INDEXED:
                    causes.append(field_invalid(f"spec.{field}", spec[field], f"must be less than or equal to "
                                                f"{_MAX_INDEXED} when completion mode is Indexed"))
        template_spec = (spec.get("template") or {}).get("spec") or {}
        if template_spec.get("restartPolicy") == "Always":
            causes.append(meta.field_not_supported("spec.template.spec.restartPolicy", "Always", _JOB_RESTART))
        return causes + jobpolicies.validate(spec) + validate_selector_and_template(spec, _JOB_RESTART)

    def validate_immutable(self, new, old):
        causes = []
        new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        for field in ("selector", "completionMode"):
            if new_spec.get(field) != old_spec.get(field):
                causes.append(field_invalid(f"spec.{field}", new_spec.get(field), "field is immutable"))
        return causes + _completions_update(new_spec, old_spec) + jobpolicies.validate_immutable(new_spec, old_spec)


def _completions_update(new_spec: dict, old_spec: dict) -> list:
    """completions is immutable, except that an Indexed Job may change it together with parallelism (elastic
    Indexed Jobs, GA in 1.31; a missing value has its own error)."""
    completions = new_spec.get("completions")
    if completions == old_spec.get("completions"):
        return []
    if new_spec.get("completionMode") != "Indexed":
        return [field_invalid("spec.completions", completions, "field is immutable")]
    if completions is not None and completions != new_spec.get("parallelism"):
        return [field_invalid("spec.completions", completions,
                              "can only be modified in tandem with spec.parallelism")]
    return []


class CronJobStrategy(Strategy):
    tracks_generation = True

    def default(self, obj):
        spec = obj.setdefault("spec", {})
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        job_template = spec.get("jobTemplate")
        if isinstance(job_template, dict):
            job_spec = job_template.setdefault("spec", {})
            default_backoff_limit(job_spec)
            podspec.default_template(job_spec.get("template"))

    def validate(self, obj):
        spec = obj.get("spec") or {}
        causes = []
        schedule = spec.get("schedule")
        if not schedule:
            causes.append(field_required("spec.schedule"))
        elif len(str(schedule).split()) != 5 and not str(schedule).startswith("@"):
            causes.append(field_invalid("spec.schedule", schedule, "unparseable schedule: expected exactly 5 "
                                        "fields"))
        causes.extend(validation.one_of(spec.get("concurrencyPolicy"), "spec.concurrencyPolicy",
                                        ["Allow", "Forbid", "Replace"]))
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
        if not isinstance(template, dict):
            causes.append(field_required("spec.jobTemplate.spec.template"))
        else:
            causes.extend(podspec.validate_pod_spec(template.get("spec"), "spec.jobTemplate.spec.template.spec",
                                                    _JOB_RESTART))
            causes.extend(jobpolicies.validate(spec["jobTemplate"]["spec"], "spec.jobTemplate.spec"))
        return causes
