"""The whole line as one document, for safeguarding review and sign-off.

Every step's full words in order, its choices, the links it adds to the text,
and a table of the paths from the start with their estimated speaking time.
The order is stable (the order of flows.yaml; paths in menu order) and there
is no date in it, so a change to the flow shows as a small diff. Markdown for
diffs; a plain, self-contained HTML page (everything escaped) to read or print.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from ivr.call import engine, speech
from ivr.call.flow import TARGET_FIELDS, Flow, Node
from ivr.flowtools.graph import OUTCOMES
from ivr.problems import Problem

MAX_PATHS = 500  # a flow this branchy needs a smaller review anyway


@dataclass(frozen=True)
class Code:
    """A name from the files (a step, a prompt key): shown as code."""

    text: str


# A document is a list of blocks: ("h1" | "h2" | "h3" | "p", inline), ("ol" | "ul",
# [inline]), ("table", [header], [[inline]]); inline is a str, a Code, or a list of them.


def _flat(inline) -> list:
    return list(inline) if isinstance(inline, list) else [inline]


def _fill(flow: Flow, key: str) -> str:
    """A prompt as written, numbers in groups ({entered}: the number the caller keyed in)."""
    if key not in flow.prompts:
        return f"(missing prompt {key})"
    return flow.written(flow.prompts[key]).replace("{entered}", "[the number they keyed in]")


def _said(flow: Flow, keys) -> list:
    return [[Code(key), ": " + _fill(flow, key)] for key in keys]


def _link(flow: Flow, key: str) -> str:
    link = flow.links.get(key)
    return f"{link.label}: {link.url}" if link else f"{key} (no such link)"


def _ways(node: Node, flow: Flow) -> list[tuple[str, str]]:
    ways = []
    for name in TARGET_FIELDS:
        target = node.target(name)
        if target and not (name == "on_give_up" and node.type == "menu"):
            ways.append((OUTCOMES.get(name, name), target))
    if node.type == "menu":
        ways.append((OUTCOMES["on_give_up"], node.target("on_give_up") or flow.give_up))
    return ways


def _examples_blocks(node: Node) -> list:
    """Each choice's examples: how the line recognises a caller's own words (docs/understanding.md)."""
    choices = [*node.choices, *([node.yes] if node.yes else [])]
    rows = [[Code(c.to or "yes"), f" (key {c.key}): " + "; ".join(c.examples)] for c in choices if c.examples]
    if not rows:
        return []
    return [("p", "What callers might say (examples the line learns from):"), ("ul", rows)]


def _step_blocks(flow: Flow, node: Node, raw: dict, optional: set[str]) -> list[tuple]:
    title = [Code(node.id), f" ({node.type.replace('_', ' ')})"]
    notes = []
    for name in ("start", "home", "urgent", "finish", "give_up"):
        if getattr(flow, name) == node.id:
            notes.append({"start": "the first step of every call", "home": "the main menu (key 0)",
                          "urgent": "the urgent step (key 9 from every menu)",
                          "finish": "the finish step (key #)",
                          "give_up": "after too many silences or wrong keys"}[name])
    if node.id in optional:
        notes.append("optional: reached only when a setting is set")
    blocks: list[tuple] = [("h3", title)]
    if notes:
        blocks.append(("p", "; ".join(notes).capitalize() + "."))
    if node.say:
        blocks.append(("p", f"Says (about {speech.clock(speech.before_choices(flow, node))}):"))
        blocks.append(("ol", _said(flow, node.say)))
    if node.id == flow.start and node.say and flow.offers:
        from ivr.flowtools import plain

        blocks.append(("p", [f"Between its first sentence ({node.say[0]}) and the rest, inside "
                             "the <Gather>, each other language's offer in its own voice:"]))
        blocks.append(("ol", _said(flow, [k for o in flow.offers for k in o.prompts])))
        blocks.append(("ul", plain.offer_lines(flow)))
    if node.type == "dial":
        blocks.append(("p", ["Puts the call through to the number in the setting ", Code(str(node.dial)),
                             "."]))
    if node.type == "number_entry" and node.invalid:
        blocks.append(("p", ["When the number is not a UK mobile: ", Code(node.invalid), ": "
                             + _fill(flow, node.invalid)]))
    if node.type == "menu":
        raw_choices = raw.get("choices", ())
        rows = []
        for index, choice in enumerate(node.choices):
            requires = raw_choices[index].get("requires") if index < len(raw_choices) else None
            words = ([Code(choice.prompt), ": " + _fill(flow, choice.prompt)] if choice.prompt
                     else "(not read out)")
            goes = [Code(choice.to)] + ([" (optional: only when ", Code(requires), " is set)"]
                                        if requires else [])
            rows.append([choice.key, words, ", ".join(choice.phrases), goes])
        for nav in flow.nav_for(node):
            target = {"repeat": node.id, "home": flow.home, "finish": flow.finish}[nav.name]
            rows.append([nav.key, [Code(nav.prompt), ": " + _fill(flow, nav.prompt)],
                         ", ".join(nav.phrases), [Code(target), f" ({nav.name})"]])
        blocks.append(("table", ["key", "words", "phrases a caller may say", "goes to"], rows))
        blocks += _examples_blocks(node)
    ways = _ways(node, flow)
    if ways:
        blocks.append(("ul", [[f"{what}: ", Code(target)] for what, target in ways]))
    if node.links:
        blocks.append(("p", "Adds to the text:"))
        blocks.append(("ul", [[Code(key), ": " + _link(flow, key)] for key in node.links]))
    if node.type == "menu":
        blocks.append(("p", f"Whole step, words and choices: about "
                            f"{speech.clock(speech.step_seconds(flow, node))}."))
    if node.type == "goodbye":
        blocks.append(("p", "Then the call ends."))
    return blocks


def _onward(flow: Flow, node: Node, follow_urgent: bool) -> list[tuple[str, str]]:
    """(how, where) a caller goes on from a step, for the tables of paths.

    Key 9 leads to the same urgent step from every menu: it is followed only
    where follow_urgent says. The flow's own keys (*, 0, #) and too many
    tries are left out: every menu has them.
    """
    out = []
    for choice in node.choices:
        if choice.to == flow.urgent and not follow_urgent:
            continue
        out.append((f"key {choice.key}", choice.to))
    for name in TARGET_FIELDS:
        target = node.target(name)
        if target and not (node.type == "menu" and name == "on_give_up"):
            out.append((OUTCOMES.get(name, name), target))
    return out


WAITS = ("menu", "number_entry", "goodbye")  # steps where a caller chooses, keys in, or hangs up


def paths(flow: Flow, start: str, stop: set[str], urgent_from: str | None = None) -> list:
    """Every path from start, as [(how, step)], to each step where the caller waits or the call ends.

    A path goes no further than a goodbye, a step in stop, or a step it has
    already been through; key 9 is followed only from the step urgent_from.
    """
    found: list[list[tuple[str, str]]] = []

    def walk(path):
        if len(found) >= MAX_PATHS:
            return
        node_id = path[-1][1]
        node = flow.nodes.get(node_id)
        if node is None:
            found.append(path)
            return
        ends = node.type == "goodbye" or (node_id in stop and len(path) > 1)
        onward = [] if ends else [
            (how, to) for how, to in _onward(flow, node, node_id == urgent_from)
            if to not in {step for _, step in path}]
        if node.type in WAITS or node_id in stop or not onward:
            found.append(path)
        for how, to in onward:
            walk([*path, (how, to)])

    if start in flow.nodes:
        walk([("", start)])
    return found


def _message_chain(flow: Flow, node_id: str) -> list[str]:
    chain = []
    while node_id in flow.nodes and node_id not in chain:
        chain.append(node_id)
        if flow.nodes[node_id].type != "message":
            break
        node_id = flow.nodes[node_id].target("next")
    return chain


def _path_rows(flow: Flow, found, optional: set[str]) -> list:
    rows = []
    for number, path in enumerate(found, 1):
        steps: list[str | Code] = []
        for how, node_id in path:
            if how:
                steps.append(f" ({how}) → ")
            steps.append(Code(node_id))
        secs = sum(speech.step_seconds(flow, flow.nodes[node_id]) for _, node_id in path
                   if node_id in flow.nodes)
        note = "optional" if any(node_id in optional for _, node_id in path) else ""
        rows.append([str(number), steps, speech.clock(secs), _fastest(flow, path), note])
    return rows


def _fastest(flow: Flow, path) -> str:
    """When a caller who presses each key of the path the moment it counts hears the last
    step's point ("-" for a path that needs more than keys: a failed call, a keyed number)."""
    hows = [how for how, _ in path[1:]]
    if path[0][1] != flow.start or any(
            not how.startswith("key ") and how not in ("then", "text arranged") for how in hows):
        return "-"
    keys = [how.removeprefix("key ") for how in hows if how.startswith("key ")]
    times = speech.fastest(flow, keys, to=path[-1][1])
    return speech.clock(times[1]) if times else "-"


def answer_times(flow: Flow, step_name=Code) -> list:
    """The first moment a key counts, and what each first choice gives at the earliest
    (issue 14). step_name shows a step: its id by default, its title in the staff script."""
    first = speech.fastest(flow, [])
    if first is None:
        return []
    lines: list = [f"The first key counts at about {speech.clock(first[0])} into the call (goal: within "
             f"{speech.clock(speech.FIRST_KEY_GOAL)}): only the 999 sentence comes before it; "
             f"every other sentence can be cut by a key or by words."]
    menu = flow.nodes.get(engine.start(flow).node)
    for choice in menu.choices if menu is not None and menu.type == "menu" else ():
        times = speech.fastest(flow, [choice.key])
        if times:
            lines.append([f"Key {choice.key} pressed then: ", step_name(choice.to),
                          f" gives its point (its first number, or its first sentence) at about "
                          f"{speech.clock(times[1])}."])
    return [("ul", lines)]


def document(flow: Flow, raw_nodes: dict, files: list[Path], problems: list[Problem],
             optional: set[str]) -> list:
    blocks: list = [("h1", "Calm Line: the whole line, for review")]
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        blocks.append(("p", f"THIS FLOW HAS {len(errors)} ERROR(S): do not sign it off. "
                            f"Run `ivr check` and mend them first."))
        blocks.append(("ul", [str(p) for p in errors]))
    warnings = [p for p in problems if p.severity != "error"]
    if warnings:
        blocks.append(("p", f"{len(warnings)} warning(s) from ivr check:"))
        blocks.append(("ul", [str(p) for p in warnings]))
    blocks.append(("p", "Made from these files (sha256 of each, to match a sign-off to a version):"))
    blocks.append(("ul", [[Code(_relative(path)), " " + _digest(path)] for path in files]))
    blocks.append(("p", f"Speaking times are estimates: {speech.WORDS_PER_MINUTE} words a minute, "
                        f"a number counted as its digits, plus {speech.pause(flow):g} s between "
                        f"the prompts a step says. Numbers are spoken digit by digit and written "
                        f"in groups. Voice: {flow.voice} ({flow.language})."))

    blocks.append(("h2", "Steps, in the order of flows.yaml"))
    for node in flow.nodes.values():
        blocks += _step_blocks(flow, node, raw_nodes.get(node.id) or {}, optional)

    blocks.append(("h2", "Keys every menu offers"))
    blocks.append(("table", ["name", "key", "words", "phrases"], [
        [Code(nav.name), nav.key, [Code(nav.prompt), ": " + _fill(flow, nav.prompt)], ", ".join(nav.phrases)]
        for nav in flow.nav_keys.values()]))
    examples = [[Code(nav.name), ": " + "; ".join(nav.examples)] for nav in flow.nav_keys.values()
                if nav.examples]
    if examples:
        blocks.append(("p", "What callers might say for them (examples the line learns from):"))
        blocks.append(("ul", examples))
    blocks.append(("p", f"After {flow.gather.get('max_tries', 3)} silences or wrong keys in one menu "
                        f"the call goes to its too-many-tries step."))
    if flow.spoken_keys:
        blocks.append(("p", "Spoken key names: " + ", ".join(
            f"{word} = {key}" for word, key in flow.spoken_keys.items()) + "."))
    blocks.append(("h2", "Notices (said before a menu is read again, and before the give-up words)"))
    blocks.append(("ul", [[f"{name}: ", Code(key), ": " + _fill(flow, key)]
                          for name, key in flow.notices.items()]))
    blocks.append(("h2", "Safety words (read when anything fails)"))
    blocks.append(("ol", [flow.written(text) for text in flow.safety]))

    blocks.append(("h2", "The text after the call"))
    blocks += _text_blocks(flow)

    blocks.append(("h2", "Paths from the start"))
    blocks.append(("p", "Every path a caller can take by choosing, to each step where they choose "
                        f"again, until the call ends, reaches the finish step ({flow.finish}) or "
                        "would come back to a step already heard. Key 9 is followed from the first "
                        "menu only (it leads to the same urgent step from every menu); *, 0, # and "
                        "too many tries are left out. The time is everything said on the way: each "
                        "step's words and, for a menu, its choices. \"Fastest\" is when a caller who "
                        "presses each key the moment it counts hears the point of the last step "
                        "(its first number, or its first sentence)."))
    blocks += answer_times(flow)
    first_menu = next((node_id for node_id in _message_chain(flow, flow.start)
                       if flow.nodes[node_id].type == "menu"), None)
    found = paths(flow, flow.start, {flow.finish}, urgent_from=first_menu)
    blocks.append(("table", ["#", "path", "time", "fastest", "note"], _path_rows(flow, found, optional)))
    blocks.append(("h2", "Endings"))
    blocks.append(("p", f"From the finish step ({flow.finish}), and from {flow.give_up} after too "
                        "many tries, to the end of the call (key 9 left out)."))
    endings = paths(flow, flow.finish, set()) + paths(flow, flow.give_up, {flow.finish})
    blocks.append(("table", ["#", "path", "time", "fastest", "note"],
                   _path_rows(flow, endings, optional)))
    from ivr.flowtools import plain

    return blocks + plain.sign_off(files)


def from_start(flow: Flow) -> list:
    """The paths of the script's table: from the start to the finish step, key 9 once."""
    first_menu = next((node_id for node_id in _message_chain(flow, flow.start)
                       if flow.nodes[node_id].type == "menu"), None)
    return paths(flow, flow.start, {flow.finish}, urgent_from=first_menu)


def path_seconds(flow: Flow, path) -> float:
    return sum(speech.step_seconds(flow, flow.nodes[node_id]) for _, node_id in path
               if node_id in flow.nodes)


HOW = {"key": "press", "then": "then", "if it fails": "if that fails",
       "text arranged": "text arranged", "needs a number": "needs a number",
       "opted out of texts": "no texts"}


def plain_path(path, names: dict[str, str]) -> str:
    """A path in words: 'The start of every call → The main menu → (press 2) To get ...'."""
    out = []
    for how, node_id in path:
        how = how.replace("key ", "press ") if how.startswith("key ") else HOW.get(how, how)
        out.append((f"({how}) " if how and how != "then" else "") + names.get(node_id, node_id))
    return " → ".join(out)


def staff_document(flow: Flow, raw_nodes: dict, files: list[Path], problems: list[Problem],
                   optional: set[str]) -> list:
    """The plain-words version for sign-off (plain.py): no step ids, no setting names."""
    from ivr.flowtools import plain

    def rows(names, numbers):
        return [[str(n), plain_path(path, names), speech.clock(path_seconds(flow, path))]
                for n, path in enumerate(from_start(flow), 1)]

    names, numbers = plain.titles(flow), plain.numbered(flow)
    answers = answer_times(flow, lambda to: plain.name(flow, to, names, numbers))
    return plain.document(flow, raw_nodes, files, problems, optional, rows, answers)


def _text_blocks(flow: Flow) -> list:
    from ivr.texts import body as textbody

    blocks: list[tuple] = [("p", "The text with no branch heard (each line of the text):"),
              ("ol", textbody.compose(flow, []).splitlines())]
    branches = [node.id for node in flow.nodes.values() if node.links]
    if branches:
        parts = textbody.compose_parts(flow, branches)
        sizes = ", ".join(f"{textbody.segments(part)} SMS segment(s), {len(part)} characters"
                          for part in parts)
        blocks.append(("p", f"The longest text, for a caller who heard every step with links "
                            f"({len(parts)} text(s): {sizes}):"))
        blocks.append(("ol", [line for part in parts for line in part.splitlines()]))
    others = [key for key in flow.sms if key not in ("intro", "nspcc", "danger", "stop")]
    if others:
        blocks.append(("p", "Replies to texts:"))
        blocks.append(("ul", [[Code(key), ": " + flow.written(flow.sms[key])] for key in others]))
    return blocks


def _relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _digest(path: Path) -> str:
    from ivr.flowtools import plain

    return plain.digest(path)


# -- rendering -----------------------------------------------------------------


def _md_inline(inline, cell: bool = False) -> str:
    out = []
    for part in _flat(inline):
        if isinstance(part, Code):
            out.append(f"`{part.text}`")
        else:
            text = str(part).replace("\\", "\\\\")
            for char in "*`<":
                text = text.replace(char, "\\" + char)
            if cell:
                text = text.replace("|", "\\|")
            out.append(text)
    text = "".join(out).replace("\n", " ")
    return "\\" + text if text[:1] in ("#", ">", "+", "-", "=") else text


def to_markdown(blocks: list) -> str:
    lines: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + _md_inline(block[1]), ""]
        elif kind == "p":
            lines += [_md_inline(block[1]), ""]
        elif kind in ("ol", "ul"):
            for index, item in enumerate(block[1], 1):
                lines.append(f"{index}. " if kind == "ol" else "- ")
                lines[-1] += _md_inline(item)
            lines.append("")
        elif kind == "table":
            header, rows = block[1], block[2]
            lines.append("| " + " | ".join(_md_inline(h, True) for h in header) + " |")
            lines.append("|" + "---|" * len(header))
            for row in rows:
                lines.append("| " + " | ".join(_md_inline(cell, True) for cell in row) + " |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _html_inline(inline) -> str:
    return "".join(f"<code>{html.escape(part.text)}</code>" if isinstance(part, Code)
                   else html.escape(str(part)) for part in _flat(inline))


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.45; color: #222; }
h2 { border-bottom: 1px solid #ccc; margin-top: 2.5rem; }
h3 { margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
code { background: #f3f3f3; padding: 0 0.2rem; }
p.alert { color: #b00020; font-weight: bold; }
@media print { h3 { break-after: avoid; } tr { break-inside: avoid; } }
"""


def to_html(blocks: list) -> str:
    title = _html_inline(blocks[0][1]) if blocks and blocks[0][0] == "h1" else "Calm Line"
    out = ["<!DOCTYPE html>", '<html lang="en-GB">', "<head>", '<meta charset="utf-8">',
           f"<title>{title}</title>", f"<style>{STYLE}</style>", "</head>", "<body>"]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out.append(f"<{kind}>{_html_inline(block[1])}</{kind}>")
        elif kind == "p":
            text = _html_inline(block[1])
            alert = ' class="alert"' if text.startswith("THIS FLOW HAS") else ""
            out.append(f"<p{alert}>{text}</p>")
        elif kind in ("ol", "ul"):
            out.append(f"<{kind}>" + "".join(f"<li>{_html_inline(item)}</li>" for item in block[1])
                       + f"</{kind}>")
        elif kind == "table":
            head = "".join(f"<th>{_html_inline(h)}</th>" for h in block[1])
            rows = "".join("<tr>" + "".join(f"<td>{_html_inline(cell)}</td>" for cell in row) + "</tr>"
                           for row in block[2])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
