"""Rules on the flow's shape: steps and prompts that exist, menus, ways on, dead ends, loops, hours."""
from __future__ import annotations

import json

from ivr.call import hours
from ivr.call.flow import TARGET_FIELDS, Flow, Node, edges, reachable, schema_errors
from ivr.call.wording import placeholders
from ivr.flowtools.rules.common import (
    MAX_CHOICES,
    PROMPTS_SCHEMA,
    URGENT_KEY,
    did_you_mean,
    every_text,
    node_path,
)
from ivr.problems import Problem
from ivr.yamlfile import YamlDoc

# What each kind of step needs to move the caller on (its ways on), and what
# the caller would meet without it.
WAYS_ON = {
    "message": {"next": "after its words the call would stop in silence"},
    "dial": {"next": "nothing says where the call goes after the NSPCC call ends",
             "on_fail": "nothing says where the call goes when nobody answers"},
    "number_entry": {"next": "nothing says where to go once a number is keyed in",
                     "on_give_up": "nothing says where to go after too many tries"},
    "text_request": {"on_queued": "nothing says what to say once the text is arranged",
                     "on_need_number": "nothing says where to ask for a mobile number",
                     "on_opted_out": "nothing says what to say when the number opted out",
                     "on_fail": "nothing says what to say when the text cannot be arranged"},
    "text_confirm": {"on_queued": "nothing says what to say once the text is arranged",
                     "on_opted_out": "nothing says what to say when the number opted out",
                     "on_fail": "nothing says what to say when the text cannot be arranged"},
}


def check_targets(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems = []
    for name in ("start", "home", "urgent", "finish", "give_up"):
        target = getattr(flow, name)
        if target not in flow.nodes:
            problems.append(flows.problem((name,), "E020",
                                          f"{name} names a step that does not exist: {target!r}"
                                          + did_you_mean(target, flow.nodes)))
    raw_nodes = flows.data["nodes"]
    for node_id, raw in raw_nodes.items():
        for index, choice in enumerate(raw.get("choices", ())):
            if choice["to"] not in flow.nodes:
                problems.append(flows.problem(
                    node_path(node_id, "choices", index, "to"), "E020",
                    f"key {choice['key']} of {node_id!r} leads to an unknown step {choice['to']!r}"
                    + did_you_mean(choice["to"], flow.nodes)))
        for field in TARGET_FIELDS:
            if field in raw and raw[field] not in flow.nodes:
                problems.append(flows.problem(node_path(node_id, field), "E020",
                                              f"{field} of {node_id!r} names an unknown step {raw[field]!r}"
                                              + did_you_mean(raw[field], flow.nodes)))
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
            yield node_path(node_id, "say", index), key
        for index, choice in enumerate(node.get("choices", ())):
            if "prompt" in choice:
                yield node_path(node_id, "choices", index, "prompt"), choice["prompt"]
        if "invalid" in node:
            yield node_path(node_id, "invalid"), node["invalid"]


def check_prompts(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems = [
        flows.problem(path, "E021", f"prompt {key!r} is not in {prompts.file}"
                                    + did_you_mean(key, flow.prompts, "add it there"))
        for path, key in _prompt_refs(flow, flows)
        if key not in flow.prompts
    ]
    known = set(flow.numbers) | {"entered"}  # {entered}: the number a caller keyed in
    for path, text in every_text(flow):
        for name in placeholders(text):
            if name not in known:
                problems.append(prompts.problem(
                    path, "E026", f"{{{name}}} is not one of the numbers: {', '.join(sorted(flow.numbers))}"))
    if not flow.safety:
        problems.append(prompts.problem(
            (), "E021", "the prompts need a `safety` list: the words read when anything fails"))
    return problems


def check_menus(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems = []
    for node in flow.nodes.values():
        if node.type != "menu":
            continue
        seen: dict[str, str] = {}
        for index, choice in enumerate(node.choices):
            if choice.key in seen:
                problems.append(flows.problem(node_path(node.id, "choices", index, "key"), "E022",
                                              f"key {choice.key} is used twice in menu {node.id!r}"))
            seen[choice.key] = f"choice {index + 1}"
        for nav in flow.nav_for(node):
            if nav.key in seen:
                problems.append(flows.problem(
                    node_path(node.id, "choices"), "E022",
                    f"key {nav.key} in menu {node.id!r} is also the {nav.name} key"))
        urgent = [c for c in node.choices if c.key == URGENT_KEY]
        if not urgent or urgent[0].to != flow.urgent:
            problems.append(flows.problem(
                node_path(node.id, "choices"), "E023",
                f"menu {node.id!r} must offer key {URGENT_KEY} to the urgent step {flow.urgent!r}"))
        elif node.choices[0].key != URGENT_KEY:
            index = node.choices.index(urgent[0])
            problems.append(flows.problem(
                node_path(node.id, "choices", index), "E033",
                f"menu {node.id!r} offers key {URGENT_KEY} (the urgent step) as choice {index + 1}: "
                f"move it to the top of `choices:`, so a caller in danger hears it first"))
        if len(node.choices) > MAX_CHOICES:
            problems.append(flows.problem(
                node_path(node.id, "choices"), "W004",
                f"menu {node.id!r} offers {len(node.choices)} choices; at most {MAX_CHOICES} at once "
                f"are easy to keep in mind: move some to a menu of their own"))
    return problems


def check_reachable(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    seen = reachable(flow)
    return [
        flows.problem(node_path(node_id), "E024", f"step {node_id!r} cannot be reached from {flow.start!r}")
        for node_id in flow.nodes
        if node_id not in seen
    ]


def check_links(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems = []
    for node_id, raw in flows.data["nodes"].items():
        for index, key in enumerate(raw.get("links", ())):
            if key not in flow.links:
                problems.append(flows.problem(node_path(node_id, "links", index), "E025",
                                              f"link {key!r} is not in the links of {prompts.file}"
                                              + did_you_mean(key, flow.links)))
    return problems


def prompts_schema_problems(prompts: YamlDoc) -> list[Problem]:
    """The prompts file against schema/prompts.schema.json (E012)."""
    if not isinstance(prompts.data, dict):
        return []  # E011, reported by flow.load
    problems = []
    for path, where, error in schema_errors(prompts.data, json.loads(PROMPTS_SCHEMA.read_text())):
        if "propertyNames" in error.schema_path:  # a name, not a value: point at the name
            problems.append(prompts.problem(
                (*path, error.instance), "E012",
                f"{where}: the name {error.instance!r} must be lower case letters, digits and _"
                + (" in words joined by dots (e.g. main.intro)" if path == ("prompts",) else "")))
            continue
        hint = ""
        if path[:1] == ("numbers",) and error.validator in ("pattern", "type"):
            hint = ' (write a number in quotes, as digits in groups: "0808 800 5000")'
        elif error.instance is None:
            hint = " (the text is empty: write the words after the colon, in quotes)"
        problems.append(prompts.problem(path, "E012", f"{where}: {error.message}{hint}"))
    return problems


def check_unused(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems = []
    used = {key for _, key in _prompt_refs(flow, flows)}
    if flow.confirm:  # "I think you asked about ...": said for the step a caller's words point to
        used |= {f"confirm.{node_id}" for node_id in flow.nodes}
    for key in flow.prompts:
        if key not in used:
            problems.append(prompts.problem(
                ("prompts", key), "W001",
                f"prompt {key!r} is never said: no step, key or notice in flows.yaml names it "
                f"(remove it, or add it to a step's say:)"))
    linked = {key for node in flow.nodes.values() for key in node.links}
    for key in flow.links:
        if key not in linked:
            problems.append(prompts.problem(
                ("links", key), "W001",
                f"link {key!r} is never sent: no step in flows.yaml adds it to the text "
                f"(remove it, or add it to a step's links:)"))
    named = {name for _, text in every_text(flow) for name in placeholders(text)}
    for name in flow.numbers:
        if name not in named:
            problems.append(prompts.problem(
                ("numbers", name), "W001",
                f"number {name!r} is never said or sent: no prompt, safety or sms text has "
                f"{{{name}}} (remove it, or use it)"))
    return problems


def _self_ways(node: Node) -> list[str]:
    """Ways on of a step that lead straight back to it (a menu may repeat itself by key)."""
    fields = [f for f in TARGET_FIELDS if node.type != "menu" or f == "on_give_up"]
    return [f for f in fields if node.target(f) == node.id]


def check_dead_ends(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    problems = []
    for node in flow.nodes.values():
        for field, without in WAYS_ON.get(node.type, {}).items():
            if node.target(field) is None:
                problems.append(flows.problem(
                    node_path(node.id), "E027",
                    f"step {node.id!r} ({node.type}) has no {field}: {without}. Add "
                    f"`{field}: <step>` to it"
                    + (", or make it type: goodbye to end the call here" if node.type == "message" else "")))
        for field in _self_ways(node):
            problems.append(flows.problem(
                node_path(node.id, field), "E027",
                f"{field} of {node.id!r} leads back to {node.id!r} itself, so the caller would go "
                f"round it again and again: name the step that should come next"))
    return problems


def check_loops(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    """Steps from which no goodbye can be reached: the call could never end politely."""
    goodbyes = {node_id for node_id, node in flow.nodes.items() if node.type == "goodbye"}
    if not goodbyes:
        return [flows.problem(("nodes",), "E028",
                              "no step ends the call: add a step with type: goodbye (the finish "
                              "step's choices should lead to one)")]
    successors = {
        node_id: {target for _, target in edges(flow, node) if target in flow.nodes}
        for node_id, node in flow.nodes.items()
    }
    can_end = set(goodbyes)
    changed = True
    while changed:
        changed = False
        for node_id, targets in successors.items():
            if node_id not in can_end and targets & can_end:
                can_end.add(node_id)
                changed = True
    seen = reachable(flow)
    trapped = [node_id for node_id in flow.nodes if node_id in seen and node_id not in can_end]
    problems, done = [], set()
    for node_id in trapped:  # file order: each loop is reported once, at its first step
        if node_id in done:
            continue
        if not _reaches(successors, node_id, node_id):
            continue  # not in a loop: it leads into one (reported there) or to a dead end (E027)
        loop = [other for other in trapped
                if _reaches(successors, node_id, other) and _reaches(successors, other, node_id)]
        done.update(loop)
        if loop == [node_id] and _self_ways(flow.nodes[node_id]):
            continue  # a step whose way on is itself: E027 says so
        names = ", ".join(repr(other) for other in loop)
        round_ = (f"steps {names} lead only round each other" if len(loop) > 1
                  else f"step {node_id!r} leads only back to itself")
        problems.append(flows.problem(
            node_path(node_id), "E028",
            f"{round_}: no goodbye can be reached from {'them' if len(loop) > 1 else 'it'}, so "
            f"the call could never end. Give one of them a way out: `next:` to a step that leads "
            f"on to {flow.finish!r}, or a choice"))
    return problems


def _reaches(successors: dict, start: str, goal: str) -> bool:
    seen, todo = set(), list(successors.get(start, ()))
    while todo:
        node_id = todo.pop()
        if node_id == goal:
            return True
        if node_id not in seen:
            seen.add(node_id)
            todo.extend(successors.get(node_id, ()))
    return False


def check_hours(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    """Every opening-hours schedule reads: days, times like 08:00-22:00, dates."""
    problems: list[Problem] = []
    nodes = flows.data.get("nodes") if isinstance(flows.data, dict) else None
    for node_id, raw in (nodes or {}).items():
        if isinstance(raw, dict) and "hours" in raw:
            _, bad = hours.parse(raw["hours"], node_path(node_id, "hours"))
            problems += [flows.problem(path, "E046", f"{'.'.join(map(str, path[1:]))}: {message}")
                         for path, message in bad]
    return problems
