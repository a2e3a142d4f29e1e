"""YAML with line numbers: the file composed into Values that remember where they were written.

Sits under settings_file.py: text -> Value tree -> Reader hands out checked keys, keeping problems.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from corsproxy.config.checks import Check, Invalid, Problem, expected

_MERGE = "tag:yaml.org,2002:merge"


@dataclass(frozen=True, eq=False)
class Value:
    """A YAML value and the 1-based line it starts on; a mapping's data is {key: Value}."""

    data: Any  # None | bool | int | float | str | list[Value] | dict[str, Value]
    line: int
    key_line: int | None = None  # for a mapping's value: the line of its key


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Tree:
    """Turns composed yaml nodes into Values; scalars are typed by yaml's own SafeLoader rules."""

    def __init__(self, loader: yaml.SafeLoader, source: str) -> None:
        self.loader, self.source = loader, source
        self.problems: list[Problem] = []
        self._open: set[int] = set()  # nodes being converted: an alias to an ancestor loops

    def value(self, node: yaml.Node, path: str, key_line: int | None = None) -> Value:
        line = node.start_mark.line + 1
        if id(node) in self._open:
            self.problems.append(Problem(self.source, line, path, "an alias refers to itself"))
            return Value(None, line, key_line)
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return Value(self._mapping(node, path), line, key_line)
            if isinstance(node, yaml.SequenceNode):
                items = [self.value(n, f"{path}[{i}]") for i, n in enumerate(node.value)]
                return Value(items, line, key_line)
            return Value(self.loader.construct_object(node, deep=True), line, key_line)
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: str) -> dict[str, Value]:
        first: dict[str, int] = {}  # yaml keeps the last of two equal keys silently; we refuse
        for key_node, _ in node.value:
            key, line = _key(key_node), key_node.start_mark.line + 1
            if key_node.tag != _MERGE and key in first:
                message = f"duplicate key; first given on line {first[key]}"
                self.problems.append(Problem(self.source, line, join(path, key), message))
            first.setdefault(key, line)
        self.loader.flatten_mapping(node)  # `<<: *defaults` merge keys, as yaml.safe_load does
        return {
            _key(k): self.value(v, join(path, _key(k)), k.start_mark.line + 1)
            for k, v in node.value
        }


def _key(node: yaml.Node) -> str:
    return node.value if isinstance(node, yaml.ScalarNode) else "?"


# An opener yaml reached the end of without its closer: the fix is on the opener's line,
# so the message names that line (and only that one), not where yaml gave up.
_UNCLOSED = {
    "while parsing a flow sequence": "the '[' on this line is never closed with ']'",
    "while parsing a flow mapping": "the '{' on this line is never closed with '}'",
    "while scanning a quoted scalar": "the quote that opens on this line is never closed",
}


def _malformed(error: yaml.MarkedYAMLError, source: str) -> Problem:
    """yaml's own words, naming one line: where the problem is, or for a bracket or quote that
    is never closed, the line that opened it."""
    line = error.problem_mark.line + 1 if error.problem_mark else None
    if isinstance(error, yaml.composer.ComposerError) and "another document" in str(error.problem):
        return Problem(source, line, "", "not valid YAML: a second document starts here; use one")
    if isinstance(error, yaml.constructor.ConstructorError):  # valid YAML, but not plain data
        return Problem(source, line, "", f"cannot use this YAML value: {error.problem}")
    unclosed = _UNCLOSED.get(error.context or "")
    problem = str(error.problem)
    if (
        unclosed
        and error.context_mark
        and (problem.startswith("expected ',' or") or "end of stream" in problem)
    ):
        return Problem(source, error.context_mark.line + 1, "", f"not valid YAML: {unclosed}")
    message = f"not valid YAML: {problem}"
    if error.context:
        message += f" ({error.context})"
    if "'\\t'" in problem:
        message += "; indent with spaces, not tabs"
    return Problem(source, line, "", message)


def parse(text: str, source: str) -> tuple[Value | None, list[Problem]]:
    """Compose (never construct blindly) so every key keeps its line for later messages."""
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # refuses control characters already
        node = loader.get_single_node()
        tree = _Tree(loader, source)
        return (None if node is None else tree.value(node, "")), tree.problems
    except yaml.MarkedYAMLError as error:
        return None, [_malformed(error, source)]
    except yaml.YAMLError as error:  # e.g. a character YAML does not allow
        return None, [Problem(source, None, "", f"not valid YAML: {error}".splitlines()[0])]
    except (ValueError, AttributeError) as error:  # a tagged or dated scalar yaml cannot build
        return None, [Problem(source, None, "", f"cannot use a YAML value: {error}")]
    except RecursionError:
        return None, [Problem(source, None, "", "not valid YAML: nested too deeply")]
    finally:
        if loader is not None:
            loader.dispose()


class Reader:
    """Walks one file's Values: checks each key, records its line, keeps every problem."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        self.warnings: list[Problem] = []
        self.lines: dict[str, int] = {}  # key path -> line, for checks that combine keys later

    def problem(self, line: int | None, path: str, message: str) -> None:
        self.problems.append(Problem(self.source, line, path, message))

    def mapping(
        self, value: Value | None, path: str, known: Sequence[str], elsewhere: Mapping = {}
    ) -> dict[str, Value] | None:
        """The known keys given; {} when absent or empty; None (reported) when not a mapping."""
        if value is None or value.data is None:
            return {}
        if not isinstance(value.data, dict):
            self.problem(value.line, path, str(expected("a mapping of keys", value.data)))
            return None
        for key, child in value.data.items():
            if key not in known:
                self.problem(child.key_line, join(path, key), _unknown(key, known, elsewhere))
        return {key: child for key, child in value.data.items() if key in known}

    def sequence(self, value: Value | None, path: str) -> list[Value]:
        if value is None or value.data is None:
            return []
        if isinstance(value.data, list):
            return value.data
        self.problem(value.line, path, str(expected("a list", value.data)))
        return []

    def field(self, value: Value, path: str, check: Check | ListOf) -> Any:
        """The checked value, or None after reporting why not."""
        self.lines[path] = value.line
        if isinstance(check, ListOf):
            return self._list(value, path, check)
        try:
            return check(value.data)
        except Invalid as error:
            self.problem(value.line, path, str(error))
            return None

    def fields(self, items: dict[str, Value], path: str, checks: Mapping) -> dict[str, Any]:
        """Every key of `checks` that is given and valid, ready to pass to a dataclass."""
        found = {
            key: self.field(items[key], join(path, key), c)
            for key, c in checks.items()
            if key in items
        }
        return {key: value for key, value in found.items() if value is not None}

    def _list(self, value: Value, path: str, check: ListOf) -> Any:
        data = value.data
        if check.wildcard and data == "*":
            return "*"
        if isinstance(data, str):
            item = self.field(value, path, check.item)
            return None if item is None else (item,)
        if not isinstance(data, list) or (check.non_empty and not data):
            self.problem(value.line, path, str(expected(check.what, data)))
            return None
        items = [self.field(item, f"{path}[{i}]", check.item) for i, item in enumerate(data)]
        return None if None in items else tuple(items)


def _unknown(key: str, known: Sequence[str], elsewhere: Mapping[str, str]) -> str:
    """Suggest the key's right section, else the nearest sibling, else a near key elsewhere."""
    if key in elsewhere:  # `rules:` at the top means cors.rules, not a typo of `routes`
        return f"unknown key; did you mean {elsewhere[key]!r}?"
    near = difflib.get_close_matches(key, known, n=1)
    if near:
        return f"unknown key; did you mean {near[0]!r}?"
    far = difflib.get_close_matches(key, list(elsewhere), n=1)
    if far:
        return f"unknown key; did you mean {elsewhere[far[0]]!r}?"
    return "unknown key; expected one of " + ", ".join(known)


@dataclass(frozen=True)
class ListOf:
    """A list key: each item checked on its own line; one plain string means a one-item list."""

    item: Check
    what: str  # for `expected WHAT; got ...` when it is not a list at all
    wildcard: bool = False  # "*" alone means "any" and is kept as the string "*"
    non_empty: bool = False
