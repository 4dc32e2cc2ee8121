"""Kubernetes' $(VAR) expansion (third_party/forked/golang/expansion), as the kubelet applies it to a container's
command, args and env values: `$(NAME)` becomes the variable's value when it is defined and stays as written when it
is not; `$$` is an escaped `$` (so `$$(NAME)` gives the text `$(NAME)`); any other `$`, and an unclosed `$(`, stay
as written."""
from __future__ import annotations

from collections.abc import Mapping, Sequence


def expand(text: str, variables: Mapping[str, str]) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char != "$" or i + 1 == n:
            out.append(char)
            i += 1
            continue
        following = text[i + 1]
        if following == "$":  # escaped operator
            out.append("$")
            i += 2
        elif following == "(":
            close = text.find(")", i + 2)
            if close == -1:  # incomplete reference: keep "$(" and go on after it
                out.append("$(")
                i += 2
            else:
                name = text[i + 2:close]
                out.append(variables[name] if name in variables else f"$({name})")
                i = close + 1
        else:  # a "$" that begins no expression keeps the character after it
            out.append("$" + following)
            i += 2
    return "".join(out)


def command_and_args(container: dict, envs: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """The container's command and args with $(VAR) expanded from its resolved environment (the last value of a
    name wins, as in the environment the container sees). The runtime applies Kubernetes' rule with the image:
    command replaces the ENTRYPOINT, args replace the CMD."""
    variables = dict(envs)
    return ([expand(str(part), variables) for part in container.get("command") or []],
            [expand(str(part), variables) for part in container.get("args") or []])
