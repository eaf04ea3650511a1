"""Read a YAML file and remember where every value came from.

PyYAML's plain load loses line numbers and silently keeps the last of two
equal keys; staff need both: "flows.yaml:42:7: duplicate key '1'".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ivr.problems import FlowError, Problem

Path_ = tuple  # a path into the document: ("nodes", "main", "choices", 0, "to")


@dataclass
class YamlDoc:
    file: str
    data: Any  # whatever the YAML holds: the schema checks say what it must be
    marks: dict = field(default_factory=dict)  # Path_ -> (line, col), 1-based

    def where(self, path: Path_) -> tuple[int, int]:
        """The position of the value at path, or of its nearest parent."""
        path = tuple(path)
        while path:
            if path in self.marks:
                return self.marks[path]
            path = path[:-1]
        return self.marks.get((), (1, 1))

    def problem(self, path: Path_, code: str, message: str, severity="error") -> Problem:
        line, col = self.where(path)
        return Problem(self.file, line, col, code, message, severity)


def _walk(node, path, doc: YamlDoc, loader, problems: list):
    doc.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in seen:
                problems.append(
                    Problem(doc.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                            "E002", f"duplicate key {key!r} (first at line {seen[key]})")
                )
            seen[key] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), doc, loader, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), doc, loader, problems)


def load(path: str | Path) -> YamlDoc:
    """Parse one YAML file; raise FlowError with file:line:col on any fault."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise FlowError([Problem(name, 1, 1, "E000", f"cannot read the file: {exc.strerror}")]) from exc
    except UnicodeDecodeError:
        raise FlowError([Problem(name, 1, 1, "E000", "the file is not UTF-8 text")]) from None
    loader = yaml.SafeLoader(text)
    loader.name = name
    try:
        node = loader.get_single_node()
        doc = YamlDoc(name, None)
        problems: list[Problem] = []
        if node is not None:
            _walk(node, (), doc, loader, problems)
            doc.data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise FlowError([Problem(name, line, col, "E001", f"YAML syntax: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise FlowError([Problem(name, 1, 1, "E001", f"YAML syntax: {exc}")]) from None
    finally:
        loader.dispose()
    if problems:
        raise FlowError(problems)
    return doc
