"""Read a scenario YAML file, or refuse it naming the file, line and field.

The text is parsed twice: :func:`yaml.compose` keeps every node's position, and
:func:`yaml.safe_load` gives the data pydantic validates. Each error location (like
``dmas.0.leaks.2.flow_m3h``) is walked down the node tree to the deepest node that
exists, whose line is reported: a wrong value points at the value, a missing field
at its mapping, an unknown field at its key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

import yaml
from pydantic import ValidationError

from leaksense.core.errors import ConfigError
from leaksense.simulator.checks import Problem, reference_errors
from leaksense.simulator.spec import Loc, ScenarioSpec


def _key_node(node: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None


def line_of(root: yaml.Node | None, loc: Loc, *, at_key: bool = False) -> int:
    """1-based line of the deepest node along ``loc`` (the key's line if ``at_key``)."""
    if root is None:
        return 1
    node, line = root, root.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = _key_node(node, str(part))
            if found is None:
                break
            key_node, node = found
            line = (key_node if at_key else node).start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _duplicate_keys(node: yaml.Node | None, path: str = "") -> tuple[int, str] | None:
    """First mapping key written twice (YAML would silently keep the last)."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                return key_node.start_mark.line + 1, f"{path}{key}"
            seen.add(key)
            found = _duplicate_keys(value_node, f"{path}{key}.")
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = _duplicate_keys(item, f"{path}{i}.")
            if found:
                return found
    return None


def _raise(source: str, root: yaml.Node | None, problems: Sequence[Problem]) -> NoReturn:
    lines = [
        f"{source} line {line_of(root, loc, at_key=unknown)}: {_dotted(loc)}: {message}"
        for loc, message, unknown in ((loc, msg, msg.startswith("Extra")) for loc, msg in problems)
    ]
    raise ConfigError("\n".join(lines))


def _clean(loc: Loc) -> Loc:
    """Drop pydantic's validator names (``function-plain[...]``) from a location."""
    return tuple(p for p in loc if isinstance(p, int) or not any(c in p for c in "[("))


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc) or "(file)"


def parse_scenario(text: str, source: str) -> ScenarioSpec:
    """Validate a scenario file's text; ``source`` names it in error messages."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{source} line {line}: invalid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from exc
    duplicate = _duplicate_keys(root)
    if duplicate is not None:
        raise ConfigError(f"{source} line {duplicate[0]}: {duplicate[1]}: key given twice")
    if not isinstance(data, dict):
        raise ConfigError(f"{source} line 1: a scenario file is a mapping (key: value)")
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        problems = [(_clean(e["loc"]), e["msg"]) for e in exc.errors()]
        _raise(source, root, problems[:10])
    problems = reference_errors(spec)
    if problems:
        _raise(source, root, problems[:10])
    return spec
