"""The flow as a diagram: Graphviz DOT (and SVG through `dot`), or Mermaid.

Each step is labelled with its name, its kind and its first words; each edge
with its key and phrases (or the outcome that takes it); the urgent step and
every edge into or out of it are drawn in red; the links a step adds to the
text are listed under it; a choice offered only when a setting is set is
dashed and labelled optional.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from ivr.call import speech
from ivr.call.flow import TARGET_FIELDS, Flow, Node

FIRST_WORDS = 8
SHOWN_PHRASES = 2  # on an arrow; the rest are in the script, and on the diagram page
URGENT_COLOUR = "#b00020"
QUIET_COLOUR = "#8a8a8a"
OUTCOMES = {  # what takes a caller along a way on, in words
    "next": "then",
    "on_fail": "if it fails",
    "on_give_up": "too many tries",
    "on_queued": "text arranged",
    "on_need_number": "needs a number",
    "on_opted_out": "opted out of texts",
    "on_closed": "outside its hours",
}
SHAPES = {  # Graphviz shapes by kind of step
    "menu": "box",
    "message": "note",
    "goodbye": "doubleoctagon",
    "dial": "cds",
    "number_entry": "box3d",
    "text_request": "hexagon",
    "text_confirm": "hexagon",
}


class GraphvizMissing(RuntimeError):
    """`dot` is not on PATH."""


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # "choice", "key" (the flow's keys: * 0 #), "give_up", "way_on"
    label: str
    optional: str | None = None  # the setting a choice requires
    urgent: bool = False


def first_words(flow: Flow, node: Node, count: int = FIRST_WORDS) -> str:
    if not node.say or node.say[0] not in flow.prompts:
        return ""
    said = flow.written(flow.prompts[node.say[0]]).replace("{entered}", "[the number keyed in]").split()
    return " ".join(said[:count]) + (" ..." if len(said) > count or len(node.say) > 1 else "")


def flow_edges(flow: Flow, raw_nodes: dict, all_keys: bool = True) -> list[Edge]:
    """Every way out of every step (the edges flow.edges lists), with what the diagram shows.

    all_keys=False leaves out the keys every menu offers (*, 0, #) and the
    default too-many-tries edges, for a simpler picture.
    """
    out = []
    for node in flow.nodes.values():
        raw_choices = (raw_nodes.get(node.id) or {}).get("choices", ())
        for index, choice in enumerate(node.choices):
            requires = raw_choices[index].get("requires") if index < len(raw_choices) else None
            shown = choice.phrases if all_keys else choice.phrases[:SHOWN_PHRASES]
            words = ", ".join(shown) + (", …" if len(shown) < len(choice.phrases) else "")
            label = f"{choice.key}: {words}" if words else choice.key
            if choice.to == flow.urgent and node.id != flow.urgent and not all_keys:
                label = choice.key  # the same words from every menu: listed once, on the step
            if requires:
                label += f"\n(optional: only when {requires} is set)"
            out.append(Edge(node.id, choice.to, "choice", label, requires,
                            urgent=flow.urgent in (choice.to, node.id)))
        if all_keys and node.type == "menu":
            for nav in flow.nav_for(node):
                target = {"repeat": node.id, "home": flow.home, "finish": flow.finish}[nav.name]
                out.append(Edge(node.id, target, "key", f"{nav.key} {nav.name}",
                                urgent=node.id == flow.urgent))
        if node.type in ("menu", "number_entry") and (all_keys or node.target("on_give_up")):
            out.append(Edge(node.id, node.target("on_give_up") or flow.give_up, "give_up",
                            OUTCOMES["on_give_up"], urgent=node.id == flow.urgent))
        for name in TARGET_FIELDS:
            if name != "on_give_up" and node.target(name):
                label = OUTCOMES.get(name, name)
                if node.type == "dial":
                    label = {"next": "after the call", "on_fail": "no answer or busy"}.get(name, label)
                out.append(Edge(node.id, node.target(name), "way_on", label,
                                urgent=flow.urgent in (node.id, node.target(name))))
    return out


def optional_steps(every: Flow, plain: Flow) -> set[str]:
    """Steps a caller reaches only through a choice that a setting switches on."""
    from ivr.call.flow import reachable

    return reachable(every) - reachable(plain)


def node_label(flow: Flow, node: Node, optional: bool, all_keys: bool = True) -> list[str]:
    lines = [f"{node.id} ({node.type.replace('_', ' ')})"]
    if node.id == flow.start:
        lines[0] += ", start"
    words = first_words(flow, node)
    if words:
        lines.append(f'"{words}"')
    if node.say:
        lines.append(f"speaks for about {speech.clock(speech.before_choices(flow, node))}")
    if node.links:
        labels = [flow.links[key].label if key in flow.links else f"{key} (unknown)" for key in node.links]
        lines.append("text: " + "; ".join(labels))
    if not all_keys and node.type == "menu":
        keys = [f"{nav.key} {nav.name}" for nav in flow.nav_for(node)]
        if not node.target("on_give_up"):
            keys.append(f"too many tries: {flow.give_up}")
        lines.append("also: " + ", ".join(keys))
    if optional:
        lines.append("(optional)")
    return lines


# -- DOT -----------------------------------------------------------------------


def dot_quote(text: str) -> str:
    """A DOT string: backslashes and quotes escaped, each line break as \\n."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r\n", "\n").replace("\n", "\\n") + '"'


def _attrs(**attrs) -> str:
    if not attrs:
        return ""
    return " [" + ", ".join(f"{name}={dot_quote(str(value))}" for name, value in attrs.items()) + "]"


def to_dot(flow: Flow, raw_nodes: dict, optional: frozenset[str] | set[str] = frozenset(),
           all_keys: bool = False) -> str:
    lines = [
        "digraph calm_line {",
        # Tighter ranks, and the many arrows into the urgent step merged (concentrate):
        # the picture fits a screen's width with far fewer crossings.
        "  graph" + _attrs(rankdir="TB", fontname="Helvetica", label="Calm Line: the call flow",
                           labelloc="t", nodesep="0.3", ranksep="0.5", concentrate="true",
                           newrank="true"),
        "  node" + _attrs(fontname="Helvetica", fontsize="11", style="filled", fillcolor="white"),
        "  edge" + _attrs(fontname="Helvetica", fontsize="9"),
    ]
    for node in flow.nodes.values():
        attrs = {"label": "\n".join(node_label(flow, node, node.id in optional, all_keys)),
                 "shape": SHAPES.get(node.type, "box")}
        if node.id == flow.urgent:
            attrs.update(color=URGENT_COLOUR, fillcolor="#fde2e2", penwidth="3")
        elif node.id == flow.start:
            attrs.update(penwidth="2.5")
        if node.id in optional:
            attrs.update(style="dashed,filled")
        lines.append(f"  {dot_quote(node.id)}{_attrs(**attrs)}")
    for edge in flow_edges(flow, raw_nodes, all_keys):
        attrs = {"label": edge.label}
        if edge.kind in ("key", "give_up"):
            attrs.update(color=QUIET_COLOUR, fontcolor=QUIET_COLOUR, style="dashed", constraint="false")
        if edge.optional:
            attrs.update(style="dashed")
        if edge.urgent:
            attrs.update(color=URGENT_COLOUR, fontcolor=URGENT_COLOUR, penwidth="2.5")
        target = dot_quote(edge.target)
        if edge.target not in flow.nodes:
            lines.append(f"  {target}" + _attrs(label=f"{edge.target}\n(no such step)", color="red",
                                                shape="box", style="dashed"))
        lines.append(f"  {dot_quote(edge.source)} -> {target}{_attrs(**attrs)}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(dot_text: str) -> str:
    """Run Graphviz; GraphvizMissing when it is not installed."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissing(
            "Graphviz is not installed (no `dot` on PATH): install it (Debian/Ubuntu: "
            "apt-get install graphviz), or use --format dot or --format mermaid")
    done = subprocess.run([dot, "-Tsvg"], input=dot_text, capture_output=True, text=True,
                          check=False, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"dot failed: {done.stderr.strip()}")
    return done.stdout


# -- Mermaid -------------------------------------------------------------------


def mermaid_text(text: str) -> str:
    """Text inside a quoted Mermaid label: entities for what Mermaid would read as markup."""
    text = text.replace("#", "#35;")  # first: the entities below start with #
    for char, entity in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, entity)
    return text.replace("\n", "<br/>")


def _mid(node_id: str) -> str:
    return f"n_{node_id}"  # never a Mermaid keyword such as `end`


def to_mermaid(flow: Flow, raw_nodes: dict, optional: frozenset[str] | set[str] = frozenset(),
               all_keys: bool = False) -> str:
    lines = ["flowchart TD"]
    mentioned = set(flow.nodes)
    edges = flow_edges(flow, raw_nodes, all_keys)
    for node in flow.nodes.values():
        label = mermaid_text("\n".join(node_label(flow, node, node.id in optional, all_keys)))
        lines.append(f'  {_mid(node.id)}["{label}"]')
    for edge in edges:
        if edge.target not in mentioned:
            mentioned.add(edge.target)
            lines.append(f'  {_mid(edge.target)}["{mermaid_text(edge.target)}<br/>(no such step)"]')
    urgent, quiet_links = [], []
    for index, edge in enumerate(edges):
        arrow = "-.->" if edge.optional or edge.kind in ("key", "give_up") else "-->"
        lines.append(f'  {_mid(edge.source)} {arrow}|"{mermaid_text(edge.label)}"| {_mid(edge.target)}')
        if edge.urgent:
            urgent.append(str(index))
        elif edge.kind in ("key", "give_up"):
            quiet_links.append(str(index))
    lines.append(f"  classDef urgent fill:#fde2e2,stroke:{URGENT_COLOUR},stroke-width:3px")
    lines.append("  classDef start stroke-width:3px")
    lines.append("  classDef optional stroke-dasharray:5 5")
    if flow.urgent in flow.nodes:
        lines.append(f"  class {_mid(flow.urgent)} urgent")
    if flow.start in flow.nodes and flow.start != flow.urgent:
        lines.append(f"  class {_mid(flow.start)} start")
    for node_id in sorted(optional):
        lines.append(f"  class {_mid(node_id)} optional")
    if quiet_links:
        lines.append(f"  linkStyle {','.join(quiet_links)} stroke:{QUIET_COLOUR},color:{QUIET_COLOUR}")
    if urgent:
        lines.append(f"  linkStyle {','.join(urgent)} stroke:{URGENT_COLOUR},stroke-width:3px,"
                     f"color:{URGENT_COLOUR}")
    return "\n".join(lines) + "\n"


def inline_svg(svg: str) -> str:
    """Graphviz's SVG without its XML prolog and doctype, to sit inside an HTML page."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def steps_in_words(flows_file, prompts_dir) -> list[dict]:
    """Each step of the diagram in words, for the page that shows it: its id (the
    diagram's), number and name, what the caller hears, and where its keys lead."""
    from ivr.call import flow as flow_module
    from ivr.flowtools import plain

    flows_doc, prompts_doc = flow_module.load_docs(flows_file, prompts_dir)
    flow = flow_module.build(flows_doc, prompts_doc, dict(flow_module.ALL_OPTIONAL))
    names, numbers = plain.titles(flow), plain.numbered(flow)
    steps = []
    for node in flow.nodes.values():
        choices = [f"Key {plain._key(c.key)}"
                   + (f" or “{'”, “'.join(c.phrases)}”" if c.phrases else "")
                   + f": {plain.name(flow, c.to, names, numbers)}" for c in node.choices]
        steps.append({"id": node.id, "number": numbers[node.id], "name": names[node.id],
                      "kind": node.type.replace("_", " "), "heard": plain.heard(flow, node),
                      "choices": choices,
                      "links": [flow.links[k].label for k in node.links if k in flow.links]})
    return steps


def from_files(flows_file, prompts_dir, fmt: str = "svg", all_keys: bool = False) -> str:
    """The diagram of the flow in these files (for the simulator's link to it).

    fmt is "svg" (GraphvizMissing without Graphviz), "dot" or "mermaid".
    Raises FlowError when the files cannot be read or built at all.
    """
    from ivr.call import flow as flow_module

    flows_doc, prompts_doc = flow_module.load_docs(flows_file, prompts_dir)
    every = flow_module.build(flows_doc, prompts_doc, dict(flow_module.ALL_OPTIONAL))
    plain = flow_module.build(flows_doc, prompts_doc, {})
    optional, raw_nodes = optional_steps(every, plain), flows_doc.data["nodes"]
    if fmt == "mermaid":
        return to_mermaid(every, raw_nodes, optional, all_keys)
    text = to_dot(every, raw_nodes, optional, all_keys)
    return to_svg(text) if fmt == "svg" else text
