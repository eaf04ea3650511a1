"""The house rules: which package may import which, read from the source with ast.

The call, the text after it, the staff's tools and the flow tools stand over a
small platform. These tests fail when an import breaks a rule, so a change
cannot tie the packages together by accident. (README, "Architecture".)
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ivr.config import REPO_ROOT

IVR = REPO_ROOT / "ivr"
PLATFORM = {"ivr.config", "ivr.logs", "ivr.security", "ivr.store", "ivr.problems", "ivr.yamlfile"}
# Who may import the staff package: the app factory and the `ivr` command.
STAFF_USERS = ("ivr", "ivr.cli")


def module_name(path: Path, root: Path = IVR) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path = IVR) -> set[str]:
    """Every ivr module a file imports (at any depth: lazy imports count too)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "ivr")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            if base.split(".")[0] != "ivr":
                continue
            # "from ivr.call import engine" imports the module ivr.call.engine
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if _is_module(candidate, root) else base)
    found.discard(name)
    return found


def _is_module(name: str, root: Path) -> bool:
    path = root.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def graph(root: Path = IVR) -> dict[str, set[str]]:
    return {module_name(p, root): imports_of(p, root)
            for p in sorted(root.rglob("*.py")) if "migrations" not in p.parts}


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations(edges: dict[str, set[str]]) -> list[str]:
    """Every import that breaks one of the rules, as 'a imports b: rule'."""
    found = []
    for source, targets in edges.items():
        for target in sorted(targets):
            rule = _broken_rule(source, target)
            if rule:
                found.append(f"{source} imports {target}: {rule}")
    for a, targets in edges.items():
        for b in targets:
            if a < b and a in edges.get(b, ()):
                found.append(f"{a} and {b} import each other")
    return found


def _broken_rule(source: str, target: str) -> str | None:
    if source in PLATFORM and target not in PLATFORM:
        return "the platform imports only the platform"
    if in_package(source, "ivr.call") and (in_package(target, "ivr.staff")
                                           or in_package(target, "ivr.flowtools")):
        return "the call imports nothing from the staff's tools or the flow tools"
    if in_package(source, "ivr.texts") and (in_package(target, "ivr.call.voice")
                                            or in_package(target, "ivr.staff")):
        return "the text after the call imports neither the voice webhooks nor the staff's tools"
    if in_package(target, "ivr.staff") and not in_package(source, "ivr.staff") \
            and source not in STAFF_USERS and not in_package(source, "ivr.cli"):
        return "only the app factory and the ivr command import the staff package"
    return None


def test_the_shipped_code_keeps_every_rule():
    assert violations(graph()) == []


def test_the_packages_exist_as_the_readme_says():
    for package in ("call", "texts", "staff", "flowtools", "cli"):
        assert (IVR / package / "__init__.py").exists(), package
    assert not (IVR / "checks.py").exists()  # the linter lives in flowtools only


@pytest.mark.parametrize(("where", "line", "rule"), [
    ("call/engine.py", "from ivr.staff import login", "the call imports nothing"),
    ("call/flow.py", "from ivr.flowtools import checks", "the call imports nothing"),
    ("texts/outbox.py", "from ivr.call import voice", "imports neither the voice"),
    ("metrics.py", "from ivr.staff import login", "only the app factory"),
    ("store.py", "from ivr.texts import outbox", "the platform imports only"),
    ("texts/outbox.py", "from ivr.texts import worker", "import each other"),
    ("call/engine.py", "    from ivr.staff import stats", "the call imports nothing"),
])
def test_a_forbidden_import_is_caught(tmp_path, where, line, rule):
    """Copy the package, add one forbidden import, and the rules must name it."""
    import shutil

    copy = tmp_path / "ivr"
    shutil.copytree(IVR, copy, ignore=shutil.ignore_patterns("__pycache__", "static", "templates"))
    target = copy / where
    source = target.read_text()
    if line.startswith(" "):  # a lazy import inside a function counts as much as a top-level one
        source += f"\n\ndef _probe():\n{line}\n"
    else:
        source = source.replace("from __future__ import annotations\n",
                                f"from __future__ import annotations\n\n{line}\n", 1)
    target.write_text(source)
    found = violations(graph(copy))
    assert any(rule in v for v in found), found
