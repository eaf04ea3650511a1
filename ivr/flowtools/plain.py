"""The line in plain words, for the people who sign it off (`ivr script`).

A safeguarding lead reads what callers hear and where each choice takes
them: steps are numbered and named by the words that lead to them ("To get an
image taken off the internet"), never by their ids in flows.yaml, and settings
are described, not named. `ivr script --technical` gives the engineer's
version (script.document) instead. Both end with the same sign-off block.
"""
from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

from ivr.call import speech
from ivr.call.flow import TARGET_FIELDS, Flow, Node
from ivr.config import REPO_ROOT
from ivr.flowtools import sources
from ivr.problems import Problem
from ivr.yamlfile import load as load_yaml

# What a setting does, in words (a choice that `requires:` it is offered only then).
SETTINGS = {
    "NSPCC_DIAL_NUMBER": "when the line is set up to put callers through to the NSPCC",
}
# Ways on that are not a caller's choice, in words.
WAYS = {
    "next": "Then",
    "on_fail": "If that fails",
    "on_give_up": "After too many silences or wrong keys",
    "on_queued": "Once the text is arranged",
    "on_need_number": "If the caller's own number cannot get texts",
    "on_opted_out": "If the number has asked for no texts",
}
DIAL_WAYS = {"next": "When the NSPCC call ends", "on_fail": "If nobody answers, or the line is busy"}
ROLES = {  # the flow's own steps, by role, when no choice's words name them
    "start": "The start of every call",
    "home": "The main menu",
    "finish": "The end of the call: the offer of a text",
    "give_up": "When the line cannot hear the caller",
}
KINDS = {  # the rest, by what the step does
    "text_request": "Arranging the text",
    "text_confirm": "Arranging the text to a keyed-in number",
    "number_entry": "Keying in a mobile number",
    "dial": "Putting the caller through",
    "goodbye": "Goodbye",
}


def _offer(flow: Flow, prompt: str | None) -> str:
    """'To get an image taken off the internet, press 2, or say remove.' -> the part before the key."""
    if not prompt or prompt not in flow.prompts:
        return ""
    text = flow.written(flow.prompts[prompt])
    head = re.split(r",?\s*(?:press|key|say)\b", text, maxsplit=1, flags=re.I)[0].strip(" ,.")
    return head[:1].upper() + head[1:] if len(head.split()) >= 2 else ""


def titles(flow: Flow) -> dict[str, str]:
    """A name in words for every step: its role, else the words that offer it, else its kind."""
    named: dict[str, str] = {node.id: KINDS[node.type] for node in flow.nodes.values()
                             if node.type in ("text_request", "text_confirm")}
    for role, title in ROLES.items():
        node_id = getattr(flow, role)
        named.setdefault(node_id, title)
    urgent = next((c.prompt for n in flow.nodes.values() for c in n.choices
                   if c.to == flow.urgent and c.prompt), None)
    named.setdefault(flow.urgent, _offer(flow, urgent) or "The urgent step")
    offers = [(choice.to, choice.prompt) for node in flow.nodes.values()
              for choice in node.choices]
    # An offer whose words are named for the step ("main.school" for school) first, so a
    # key pointed elsewhere does not rename the step it now leads to.
    offers.sort(key=lambda offer: (offer[1] or "").rpartition(".")[2] != offer[0])
    for target, prompt in offers:
        offer = _offer(flow, prompt)
        if offer:
            named.setdefault(target, offer)
    used: dict[str, int] = {}
    for node in flow.nodes.values():
        title = named.get(node.id) or _described(flow, node)
        used[title] = used.get(title, 0) + 1
        named[node.id] = title if used[title] == 1 else f"{title} ({used[title]})"
    return named


def _described(flow: Flow, node: Node) -> str:
    if node.type in KINDS and not (node.type == "goodbye" and node.say):
        return KINDS[node.type]
    first = flow.written(flow.prompts.get(node.say[0], "")).replace(
        "{entered}", "the number") if node.say else ""
    words = first.split()
    return ("“" + " ".join(words[:8]) + ("…" if len(words) > 8 else "") + "”") if words \
        else KINDS.get(node.type, "A step")


def numbered(flow: Flow) -> dict[str, int]:
    return {node_id: index for index, node_id in enumerate(flow.nodes, 1)}


def name(flow: Flow, node_id: str, names: dict[str, str], numbers: dict[str, int]) -> str:
    if node_id not in numbers:
        return f"(a step that does not exist: {node_id})"
    return f"step {numbers[node_id]}, {names[node_id]}"


def heard_keys(flow: Flow, node: Node) -> list[str]:
    """The prompt keys a caller hears at a step, in order: its words (at the start, each other
    language's offer right after the first sentence, as playlist.py says it), then its choices
    and keys."""
    keys = list(node.say)
    if node.id == flow.start and keys:
        keys[1:1] = [key for offer in flow.offers for key in offer.prompts]
    if node.type == "menu":
        keys += speech.choice_prompts(flow, node)
    return [k for k in keys if k in flow.prompts]


def _offered_in(flow: Flow, key: str):
    """The other language whose offer says this prompt ("pl-PL:urgent.call_999"), or None."""
    code = key.partition(":")[0] if ":" in key else None
    return next((offer for offer in flow.offers if offer.code == code), None)


def heard(flow: Flow, node: Node) -> list[str]:
    """What a caller hears at a step, in order: its words, then its choices and keys."""
    said = []
    for key in heard_keys(flow, node):
        text = flow.written(flow.prompts[key]).replace("{entered}", "[the number they keyed in]")
        offer = _offered_in(flow, key)
        said.append(f"[{offer.code}, in the voice {offer.voice}] {text}" if offer else text)
    return said


def offer_lines(first: Flow, code: str | None = None) -> list[str]:
    """When each other language's 999 sentence and key are heard (or only `code`'s)."""
    from ivr.flowtools import languages

    lines = []
    for timing in languages.offer_timings(first):
        if code and timing.code != code:
            continue
        at_999, at_key = timing.seconds(timing.at_999), timing.seconds(timing.at_key)
        lines.append(
            f"{timing.code}: right after the first sentence (its {timing.starts_at} words end "
            f"about {speech.clock(timing.starts_at / speech.WORDS_PER_SECOND)} into the call), "
            f"in its own voice: "
            f"its 999 sentence, 999 heard by word {timing.at_999} of the offer "
            f"(about {speech.clock(at_999) if at_999 is not None else '-'}), then key {timing.key} "
            f"by word {timing.at_key} (about {speech.clock(at_key) if at_key is not None else '-'}); "
            f"{timing.words} words, about {speech.clock(timing.words / speech.WORDS_PER_SECOND)} "
            f"more. Pressing {timing.key} at any menu that does not use it, or saying one of "
            f"{', '.join(f'“{w}”' for w in _offer_words(first, timing.code)) or 'its words'} "
            f"at the main menu, starts the call again in {timing.code}.")
    return lines


def _offer_words(first: Flow, code: str) -> tuple[str, ...]:
    offer = next((o for o in first.offers if o.code == code), None)
    return getattr(offer, "words", ()) if offer else ()


class Citations:
    """The sources each sentence rests on (prompts' `rests_on:` -> sources.yaml), so a
    safeguarding lead signs off against sources, not memory (issue 13)."""

    def __init__(self, files: list[Path]):
        flows_file = files[0] if files else REPO_ROOT / "flows.yaml"
        beside = Path(flows_file).parent / "sources.yaml"
        self.sources = sources.load_sources(beside if beside.exists() else REPO_ROOT / "sources.yaml")
        prompts_file = next((f for f in files[1:] if Path(f).exists()), None)
        self.prompts = load_yaml(Path(prompts_file)).data if prompts_file else {}
        self.used: dict[str, dict] = {}

    def of(self, prompt_key: str) -> str:
        # Another language's words ("pl-PL:urgent.call_999") rest on the first language's key.
        key = prompt_key.rpartition(":")[2]
        if key.startswith("language."):
            # A language's own offer of its key ("Po polsku: naciśnij 7.") is a key to press,
            # as the first language's navigation keys are: it rests on what they rest on.
            key = "nav.home"
        found = sources.sources_for(key, self.prompts or {}, self.sources)
        for source in found:
            self.used.setdefault(source["id"], source)
        return ", ".join(source["id"] for source in found)

    def rows(self) -> list[list[str]]:
        return [[key, source.get("organisation", ""), source.get("title", ""),
                 source.get("address") or source.get("file") or "", str(source.get("checked", ""))]
                for key, source in sorted(self.used.items())]


def _choice_rows(flow: Flow, node: Node, raw: dict, names, numbers) -> list:
    raw_choices = raw.get("choices", ())
    rows = []
    for index, choice in enumerate(node.choices):
        requires = raw_choices[index].get("requires") if index < len(raw_choices) else None
        goes = name(flow, choice.to, names, numbers)
        if requires:
            goes += f" (only {SETTINGS.get(requires, 'when a setting is set')})"
        rows.append([_key(choice.key), ", ".join(f"“{p}”" for p in choice.phrases), goes])
    for nav in flow.nav_for(node):
        target = {"repeat": node.id, "home": flow.home, "finish": flow.finish}[nav.name]
        goes = "hears this step again" if nav.name == "repeat" else name(flow, target, names, numbers)
        rows.append([_key(nav.key), ", ".join(f"“{p}”" for p in nav.phrases), goes])
    return rows


def _key(key: str) -> str:
    return {"*": "star", "#": "hash"}.get(key, key)


def _step_blocks(flow: Flow, node: Node, raw: dict, names, numbers, optional,
                 cites: Citations | None = None) -> list:
    blocks: list = [("h3", f"{numbers[node.id]}. {names[node.id]}")]
    if node.id in optional:
        blocks.append(("p", "Only " + next(iter(SETTINGS.values())) + "."))
    sentences = heard(flow, node)
    if cites is not None:  # beside each sentence, the sources it rests on (listed at the end)
        sentences = [f"{said} [sources: {cites.of(key) or 'none'}]"
                     for said, key in zip(sentences, heard_keys(flow, node), strict=True)]
    if sentences:
        took = speech.step_seconds(flow, node) if node.type == "menu" else \
            speech.before_choices(flow, node)
        blocks.append(("p", f"The caller hears (about {speech.clock(took)}):"))
        blocks.append(("ol", sentences))
        if node.id == flow.start and flow.offers:
            blocks.append(("p", "The lines in brackets are another language's offer, said inside "
                                "the first menu (a key cuts them), not counted in the time above:"))
            blocks.append(("ul", offer_lines(flow)))
    elif node.type in ("text_request", "text_confirm"):
        blocks.append(("p", "The line says nothing here: it arranges the text, then goes on."))
    if node.type == "dial":
        blocks.append(("p", "The line puts the caller through to the NSPCC."))
    if node.type == "number_entry" and node.invalid in flow.prompts:
        blocks.append(("p", "If the number is not a UK mobile: “"
                            + flow.written(flow.prompts[node.invalid]) + "”"))
    if node.type == "menu":
        blocks.append(("table", ["key", "or says", "goes to"],
                       _choice_rows(flow, node, raw, names, numbers)))
    ways = []
    for field in TARGET_FIELDS:
        target = node.target(field) or (flow.give_up if field == "on_give_up"
                                        and node.type == "menu" else None)
        if target:
            what = (DIAL_WAYS if node.type == "dial" else WAYS).get(field, field)
            ways.append(f"{what}: {name(flow, target, names, numbers)}.")
    if node.type == "goodbye":
        ways.append("Then the call ends.")
    if ways:
        blocks.append(("ul", ways))
    if node.links:
        blocks.append(("p", "Adds to the text: " + "; ".join(
            f"{flow.links[k].label} ({flow.links[k].url})" for k in node.links if k in flow.links)
            + "."))
    return blocks


def document(flow: Flow, raw_nodes: dict, files: list[Path], problems: list[Problem],
             optional: set[str], path_rows, answers: list | None = None) -> list:
    """The staff version: blocks for script.to_markdown / script.to_html (answers: when
    the first key counts, from script.answer_times)."""
    names, numbers = titles(flow), numbered(flow)
    blocks: list = [("h1", "Calm Line: what callers hear, for sign-off")]
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        blocks.append(("p", f"THIS FLOW HAS {len(errors)} ERROR(S): do not sign it off. "
                            "Ask for `ivr check` to be run and the errors mended first."))
    blocks.append(("p", "Every step of the line, in order: what a caller hears, the keys they "
                        "can press or the words they can say instead, and where each takes "
                        "them. Numbers are read out digit by digit. Times are estimates at a "
                        f"calm {speech.WORDS_PER_MINUTE} words a minute."))
    blocks.append(("p", "Beside each sentence, in brackets, the sources it rests on: each is "
                        "listed under \"Sources\" at the end with its page and the date it was "
                        "checked (sources.yaml)."))
    blocks.append(("h2", "The steps"))
    cites = Citations(files)
    for node in flow.nodes.values():
        blocks += _step_blocks(flow, node, raw_nodes.get(node.id) or {}, names, numbers, optional,
                               cites)
    blocks.append(("h2", "In every menu"))
    finish, urgent = names[flow.finish].lower(), name(flow, flow.urgent, names, numbers)
    blocks.append(("ul", [f"Star repeats the menu, 0 goes to the main menu, hash to {finish}, "
                          "where a menu offers them.",
                          f"Key 9, or words such as “danger”, go to {urgent}.",
                          f"After {flow.gather.get('max_tries', 3)} silences or wrong keys in one "
                          f"menu: {name(flow, flow.give_up, names, numbers)}."]))
    blocks.append(("p", "When the line did not catch what the caller did, it says one of these, "
                        "then the menu again:"))
    blocks.append(("ul", [flow.written(flow.prompts[k]) for k in flow.notices.values()
                          if k in flow.prompts]))
    blocks.append(("h2", "If anything goes wrong with the line"))
    blocks.append(("ol", [flow.written(text) for text in flow.safety]))
    blocks.append(("h2", "The text after the call"))
    blocks += _text_blocks(flow)
    blocks.append(("h2", "Every path, and how long it takes"))
    blocks.append(("p", "Each way a caller can go from the start by choosing, until the call "
                        "ends or reaches the offer of a text (key 9 from the main menu only)."))
    blocks += answers or []
    blocks.append(("table", ["#", "path", "time"], path_rows(names, numbers)))
    blocks.append(("h2", "Sources"))
    blocks.append(("p", "Every source a sentence above rests on: check the words against these "
                        "pages before signing."))
    blocks.append(("table", ["source", "organisation", "page", "address", "checked"], cites.rows()))
    blocks += sign_off(files)
    return blocks


def _text_blocks(flow: Flow) -> list:
    from ivr.texts import body as textbody

    blocks: list = [("p", "For a caller who heard none of the steps with links:"),
                    ("ol", textbody.compose(flow, []).splitlines())]
    branches = [node.id for node in flow.nodes.values() if node.links]
    if branches:
        body = textbody.compose(flow, branches)
        blocks.append(("p", f"The longest, for a caller who heard every step with links "
                            f"({textbody.segments(body)} text message(s) long):"))
        blocks.append(("ol", body.splitlines()))
    return blocks


# -- the sign-off block ----------------------------------------------------------------


def _git_version(path: Path) -> str:
    """The commit the file is at, and whether it was changed since ('' outside git)."""
    try:
        folder = str(Path(path).resolve().parent)
        commit = subprocess.run(["git", "-C", folder, "log", "-1", "--format=%h %cs", "--",
                                 str(Path(path).resolve())], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        changed = subprocess.run(["git", "-C", folder, "status", "--porcelain", "--",
                                  str(Path(path).resolve())], capture_output=True, text=True,
                                 timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    if not commit:
        return "not in git"
    return f"commit {commit}" + (", with changes not yet committed" if changed else "")


def digest(path: Path) -> str:
    """The start of the file's sha256: enough to tie a sign-off to one version."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return "(unreadable)"


def sign_off(files: list[Path]) -> list:
    """Versions to sign against, and the blanks a reviewer fills in."""
    rows = [[Path(f).name, digest(Path(f)), _git_version(Path(f))] for f in files]
    return [
        ("h2", "Sign-off"),
        ("p", "I have read every step above, and the line says what it should to a parent "
              "or carer who calls it."),
        ("table", ["file", "version (sha256)", "in git"], rows),
        ("p", "Checked on (date): " + BLANK),
        ("p", "Name: " + BLANK),
        ("p", "Role: " + BLANK),
        ("p", "Signature: " + BLANK),
    ]


BLANK = "_" * 36  # a line to write on, on screen or on paper
