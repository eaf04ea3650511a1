"""Checks on a built flow: each returns Problems pointing at the file and line.

The app runs every check at start and refuses to start on an error; `ivr
check` runs the same list and prints them all.
"""
from __future__ import annotations

from .flow import TARGET_FIELDS, Flow, edges, reachable
from .problems import Problem
from .wording import placeholders
from .yamlfile import YamlDoc

URGENT_KEY = "9"


def _node_path(node_id, *rest):
    return ("nodes", node_id, *rest)


def check_targets(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems = []
    for name in ("start", "home", "urgent", "finish", "give_up"):
        target = getattr(flow, name)
        if target not in flow.nodes:
            problems.append(flows.problem((name,), "E020", f"{name} names a step that does not exist: {target!r}"))
    raw_nodes = flows.data["nodes"]
    for node_id, raw in raw_nodes.items():
        for index, choice in enumerate(raw.get("choices", ())):
            if choice["to"] not in flow.nodes:
                problems.append(flows.problem(_node_path(node_id, "choices", index, "to"), "E020",
                                              f"key {choice['key']} of {node_id!r} leads to an unknown step {choice['to']!r}"))
        for field in TARGET_FIELDS:
            if field in raw and raw[field] not in flow.nodes:
                problems.append(flows.problem(_node_path(node_id, field), "E020",
                                              f"{field} of {node_id!r} names an unknown step {raw[field]!r}"))
    return problems


def _prompt_refs(flow: Flow, flows: YamlDoc):
    """(path in flows.yaml, prompt key) for every prompt the flow uses."""
    raw = flows.data
    for name, key in (raw.get("notices") or {}).items():
        yield ("notices", name), key
    for name, nav in (raw.get("keys") or {}).items():
        yield ("keys", name, "prompt"), nav["prompt"]
    for node_id, node in raw["nodes"].items():
        for index, key in enumerate(node.get("say", ())):
            yield _node_path(node_id, "say", index), key
        for index, choice in enumerate(node.get("choices", ())):
            if "prompt" in choice:
                yield _node_path(node_id, "choices", index, "prompt"), choice["prompt"]
        if "invalid" in node:
            yield _node_path(node_id, "invalid"), node["invalid"]


def check_prompts(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems = [
        flows.problem(path, "E021", f"prompt {key!r} is not in {prompts.file}")
        for path, key in _prompt_refs(flow, flows)
        if key not in flow.prompts
    ]
    known = set(flow.numbers) | {"entered"}  # {entered}: the number a caller keyed in
    texts = [(("prompts", k), v) for k, v in flow.prompts.items()]
    texts += [(("safety", i), v) for i, v in enumerate(flow.safety)]
    texts += [(("sms", k), v) for k, v in flow.sms.items()]
    for path, text in texts:
        for name in placeholders(text):
            if name not in known:
                problems.append(prompts.problem(path, "E026",
                                                f"{{{name}}} is not one of the numbers: {', '.join(sorted(flow.numbers))}"))
    if not flow.safety:
        problems.append(prompts.problem((), "E021", "the prompts need a `safety` list: the words read when anything fails"))
    return problems


def check_menus(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems = []
    for node in flow.nodes.values():
        if node.type != "menu":
            continue
        seen: dict[str, str] = {}
        for index, choice in enumerate(node.choices):
            if choice.key in seen:
                problems.append(flows.problem(_node_path(node.id, "choices", index, "key"), "E022",
                                              f"key {choice.key} is used twice in menu {node.id!r}"))
            seen[choice.key] = f"choice {index + 1}"
        for nav in flow.nav_for(node):
            if nav.key in seen:
                problems.append(flows.problem(_node_path(node.id, "choices"), "E022",
                                              f"key {nav.key} in menu {node.id!r} is also the {nav.name} key"))
        urgent = [c for c in node.choices if c.key == URGENT_KEY]
        if not urgent or urgent[0].to != flow.urgent:
            problems.append(flows.problem(_node_path(node.id, "choices"), "E023",
                                          f"menu {node.id!r} must offer key {URGENT_KEY} to the urgent step {flow.urgent!r}"))
    return problems


def check_reachable(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    seen = reachable(flow)
    return [
        flows.problem(_node_path(node_id), "E024", f"step {node_id!r} cannot be reached from {flow.start!r}")
        for node_id in flow.nodes
        if node_id not in seen
    ]


def check_links(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems = []
    for node_id, raw in flows.data["nodes"].items():
        for index, key in enumerate(raw.get("links", ())):
            if key not in flow.links:
                problems.append(flows.problem(_node_path(node_id, "links", index), "E025",
                                              f"link {key!r} is not in the links of {prompts.file}"))
    return problems


CHECKS = [check_targets, check_prompts, check_menus, check_reachable, check_links]


def run_all(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems: list[Problem] = []
    for check in CHECKS:
        problems.extend(check(flow, flows, prompts))
    return sorted(problems)
