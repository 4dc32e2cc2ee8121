"""Label and field selectors: Kubernetes' syntax, matching semantics, canonical form and error wording."""
import pytest
from hypothesis import given, strategies as st

from kpy_components.api.catalog import default_registry
from kpy_components.api.errors import APIError
from kpy_components.api.selectors import (field_value, format_label_selector, format_labels,
                                          label_selector_from_dict, parse_field_selector, parse_label_selector)

REGISTRY = default_registry()
PODS, NODES, EVENTS = (REGISTRY.get("", "v1", p) for p in ("pods", "nodes", "events"))


@pytest.mark.parametrize("text,labels,expected", [
    ("", {}, True),
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "web"}, True),
    ("app=web", {"app": "db"}, False),
    ("app!=web", {}, True),  # != matches objects without the key
    ("app!=web", {"app": "web"}, False),
    ("tier in (a, b)", {"tier": "b"}, True),
    ("tier in (a,b)", {}, False),
    ("tier notin (a,b)", {}, True),
    ("tier notin (a,b)", {"tier": "a"}, False),
    ("canary", {"canary": ""}, True),
    ("canary", {}, False),
    ("!canary", {}, True),
    ("!canary", {"canary": "x"}, False),
    ("n>3", {"n": "4"}, True),
    ("n<3", {"n": "4"}, False),
    ("n>3", {"n": "x"}, False),
    ("a=1,b=2", {"a": "1", "b": "2"}, True),
    ("a=1,b=2", {"a": "1"}, False),
    ("app=", {"app": ""}, True),
    ("example.com/role=db", {"example.com/role": "db"}, True),
])
def test_label_matching(text, labels, expected):
    assert parse_label_selector(text).matches(labels) is expected


@pytest.mark.parametrize("text,fragment", [
    ("a in ()", "values set can't be empty"),
    ("a b", "found 'b'"),
    ("a=b,", "identifier after ','"),
    ("=b", "found '='"),
    ("a in (x", "found ''"),
    ("A@=b", 'key: Invalid value: "A@"'),
    ("a=b c", "found 'c'"),
    ("a=-x", 'Invalid value: "-x"'),
    ("n>x", "must be an integer"),
])
def test_label_errors_are_400_with_the_problem(text, fragment):
    with pytest.raises(APIError) as caught:
        parse_label_selector(text)
    assert caught.value.code == 400 and caught.value.reason == "BadRequest"
    assert caught.value.message.startswith("unable to parse requirement: ") and fragment in caught.value.message


def test_canonical_form_sorts_keys_and_values():
    assert str(parse_label_selector("z=1, tier in (b,a), !c")) == "!c,tier in (a,b),z=1"


def test_dict_selectors():
    selector = {"matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]},
                                     {"key": "canary", "operator": "DoesNotExist"},
                                     {"key": "zone", "operator": "Exists"}]}
    matcher = label_selector_from_dict(selector)
    assert matcher.matches({"app": "web", "zone": "a"})
    assert not matcher.matches({"app": "web", "zone": "a", "canary": "1"})
    assert not matcher.matches({"app": "web"})
    assert str(matcher) == "app=web,!canary,tier notin (db),zone"
    assert label_selector_from_dict({}).matches({"anything": "x"})
    assert not label_selector_from_dict(None).matches({})
    with pytest.raises(APIError, match="not a valid label selector operator"):
        label_selector_from_dict({"matchExpressions": [{"key": "a", "operator": "Near"}]})


def test_formatting_like_kubectl_printers():
    assert format_labels({"b": "2", "a": "1"}) == "a=1,b=2"
    assert format_labels({}) == "<none>" and format_labels(None) == "<none>"
    assert format_label_selector({"matchLabels": {"app": "web"}}) == "app=web"
    assert format_label_selector(None) == "<none>" and format_label_selector({}) == "<none>"
    assert format_label_selector({"matchExpressions": [{"key": "a", "operator": "Bad"}]}) == "<error>"


_names = st.from_regex(r"[a-z0-9]([-a-z0-9_.]{0,10}[a-z0-9])?", fullmatch=True)
_label_sets = st.dictionaries(_names, _names, max_size=4)


@st.composite
def _requirements(draw):
    key = draw(_names)
    op = draw(st.sampled_from(["=", "==", "!=", "in", "notin", "exists", "!"]))
    if op in ("in", "notin"):
        return key, op, draw(st.lists(_names, min_size=1, max_size=3))
    if op in ("exists", "!"):
        return key, op, []
    return key, op, [draw(_names)]


def _text(key, op, values):
    if op == "exists":
        return key
    if op == "!":
        return f"!{key}"
    if op in ("in", "notin"):
        return f"{key} {op} ({', '.join(values)})"
    return f"{key}{op}{values[0]}"


@given(st.lists(_requirements(), max_size=4), _label_sets)
def test_canonical_string_round_trips_and_matches_the_same(terms, labels):
    text = ",".join(_text(*term) for term in terms)
    selector = parse_label_selector(text)
    again = parse_label_selector(str(selector))
    assert again == selector
    assert again.matches(labels) == selector.matches(labels)


@given(st.dictionaries(_names, _names, min_size=1, max_size=4), _label_sets)
def test_match_labels_dict_equals_its_string_form(match_labels, labels):
    from_dict = label_selector_from_dict({"matchLabels": match_labels})
    from_text = parse_label_selector(",".join(f"{k}={v}" for k, v in match_labels.items()))
    assert from_dict.matches(labels) == from_text.matches(labels) == \
        all(labels.get(k) == v for k, v in match_labels.items())


# --- field selectors ----------------------------------------------------------------------------------------------

POD = {"metadata": {"name": "web-1", "namespace": "default"},
       "spec": {"nodeName": "node1", "restartPolicy": "Always"}, "status": {"phase": "Running",
                                                                           "podIPs": [{"ip": "10.0.0.5"}]}}


@pytest.mark.parametrize("text,expected", [
    ("", True),
    ("metadata.name=web-1", True),
    ("metadata.name==web-1", True),
    ("metadata.name!=web-1", False),
    ("spec.nodeName=node1,status.phase!=Failed,status.phase!=Succeeded", True),
    ("spec.nodeName=node2", False),
    ("spec.nodeName=", False),
    ("spec.schedulerName=", True),  # missing fields compare as ""
    ("status.podIP=10.0.0.5", True),
    ("spec.hostNetwork=false", True),
])
def test_pod_field_selectors(text, expected):
    assert parse_field_selector(text, PODS).matches(POD) is expected


def test_unsupported_field_is_a_bad_request_naming_it():
    with pytest.raises(APIError) as caught:
        parse_field_selector("spec.foo=1", PODS)
    assert (caught.value.code, caught.value.message) == (400, "field label not supported: spec.foo")
    with pytest.raises(APIError, match="field label not supported: spec.nodeName"):
        parse_field_selector("spec.nodeName=a", REGISTRY.get("", "v1", "configmaps"))


def test_malformed_field_selector():
    with pytest.raises(APIError, match="can't understand 'nonsense'"):
        parse_field_selector("metadata.name=a,nonsense", PODS)


def test_escapes_and_exact():
    selector = parse_field_selector(r"metadata.name=a\,b\=c", PODS)
    assert selector.exact("metadata.name") == "a,b=c"
    assert selector.matches({"metadata": {"name": "a,b=c"}})
    assert parse_field_selector(str(selector), PODS) == selector
    assert parse_field_selector("metadata.name!=x", PODS).exact("metadata.name") is None


def test_node_unschedulable_defaults_to_false():
    assert parse_field_selector("spec.unschedulable=false", NODES).matches({"spec": {}})
    assert parse_field_selector("spec.unschedulable=true", NODES).matches({"spec": {"unschedulable": True}})


def test_event_fields_as_describe_sends_them():
    event = {"involvedObject": {"kind": "Pod", "name": "x", "namespace": "default", "uid": "u1"},
             "source": {"component": "kubelet"}, "type": "Normal", "reason": "Started"}
    selector = parse_field_selector("involvedObject.name=x,involvedObject.namespace=default,"
                                    "involvedObject.uid=u1", EVENTS)
    assert selector.matches(event)
    assert field_value(EVENTS, event, "source") == "kubelet"
    grouped = REGISTRY.get("events.k8s.io", "v1", "events")
    new_style = {"regarding": {"kind": "Node", "name": "n1"}, "reportingController": "kubelet"}
    assert parse_field_selector("involvedObject.kind=Node,source=kubelet", grouped).matches(new_style)
