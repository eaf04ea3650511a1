"""The pure core: where the caller is + what they pressed or said -> what to play.

No Flask, no database, no clock: plain functions on the loaded Flow, so every
path of the line can be tested (and simulated) without a server.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ivr.call.flow import ACTION_TYPES, Flow, Node
from ivr.call.understanding import Understanding, names_one_of
from ivr.call.wording import placeholders

MAX_CHAIN = 20  # message steps played in a row before we stop following `next`
# Twilio's CallStatus values that say a call is over (its status callback).
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})


@dataclass(frozen=True)
class CallState:
    """Everything the line keeps about a call between requests (it lives in the URL)."""

    node: str
    tries: int = 0
    heard: frozenset[str] = frozenset()  # steps heard that add links or numbers to the text
    candidate: str | None = None  # at the confirm step: where the caller's words pointed


@dataclass(frozen=True)
class Step:
    """What to play now: a few steps in a row, ending where the caller is."""

    state: CallState
    play: tuple[str, ...] = ()  # node ids whose words are said, in order
    notice: str | None = None  # prompt said first ("Sorry, ...")
    reprompt: bool = False  # the last node says only its choices, not its content
    action: str | None = None  # an action node the webhook must carry out first
    ended: bool = False

    @property
    def node(self) -> str:
        return self.state.node


@dataclass(frozen=True)
class Heard:
    """How the caller's input was understood."""

    kind: str  # "key", "silence", "wrong_key", "not_understood"
    key: str | None = None
    via: str = field(default="dtmf")
    understanding: Understanding | None = None  # how spoken words were read, for staff
    unsure: bool = False  # ask "I think you asked about ..." before going there


def adds_to_text(flow: Flow, node: Node) -> bool:
    """A step the text must reflect: it adds links, or says a number the text gives on a
    line of its own (sms.number_<name>: Childline, 101)."""
    if node.links:
        return True
    return any(f"number_{name}" in flow.sms
               for key in node.say for name in placeholders(flow.prompts.get(key, "")))


def _with_links(flow: Flow, heard: frozenset[str], node: Node) -> frozenset[str]:
    return heard | {node.id} if adds_to_text(flow, node) else heard


def enter(flow: Flow, node_id: str, heard: frozenset[str] = frozenset(),
          notice: str | None = None, play: tuple[str, ...] = ()) -> Step:
    """Go to a node, following message steps on to the node that waits for the caller."""
    for _ in range(MAX_CHAIN):
        node = flow.nodes.get(node_id)
        if node is None:  # unknown step: back to the main menu, kindly
            node_id, notice = flow.home, flow.notices.get("went_wrong")
            node = flow.nodes[node_id]
        heard = _with_links(flow, heard, node)
        if node.type == "dial" and not flow.settings.get(node.dial or ""):
            node_id = node.target("on_fail")  # nothing to dial: the failure path says the number
            continue
        if node.type in ACTION_TYPES:
            return Step(CallState(node.id, 0, heard), play, notice, action=node.id)
        play = (*play, node.id)
        if node.type != "message":
            return Step(CallState(node.id, 0, heard), play, notice, ended=node.type == "goodbye")
        node_id = node.target("next")
    # `ivr check` refuses message steps that loop (E027/E028), so this is a bug:
    # the webhook answers it with the safety words.
    raise RuntimeError(f"more than {MAX_CHAIN} message steps in a row from {play[:1]}")


def start(flow: Flow) -> Step:
    return enter(flow, flow.start)


def menu_keys(flow: Flow, node: Node) -> set[str]:
    """The keys a menu answers to: its choices, the confirm's yes, the flow's nav keys."""
    keys = {choice.key for choice in node.choices} | {nav.key for nav in flow.nav_for(node)}
    return keys | ({node.yes.key} if node.yes else set())


def offers_heard_at(flow: Flow, node: Node) -> bool:
    """Where a caller may choose another language by words: the menu the welcome leads to
    (where its offer is heard) and the main menu. Its key counts at any menu not using it."""
    if not flow.offers or node.type != "menu":
        return False
    return node.id == flow.home or node.id == start(flow).node


def chosen_language(flow: Flow, node: Node, digits: str | None, speech: str | None) -> str | None:
    """The language a caller chose here (its code), or None: its key (7 for Polish) at a menu
    that does not use that key; or, where offers_heard_at, its words ("po polsku", "Polish
    please"). Urgent words win over everything: "po polsku, someone is threatening my son"
    is an answer to the menu (the urgent step, in this language), not a choice of language."""
    if node.type != "menu" or not flow.offers:
        return None
    digits = (digits or "").strip()
    if digits:
        if digits in menu_keys(flow, node):
            return None
        return next((offer.code for offer in flow.offers if offer.key == digits), None)
    if not (speech or "").strip() or not offers_heard_at(flow, node):
        return None
    chosen = next((o.code for o in flow.offers if names_one_of(speech or "", o.words)), None)
    if chosen is None or flow.understander is None or node.id not in flow.understander.menus:
        return chosen
    # Urgent words (the safety layer's signals, or "nine"), not a near match: "polish" is
    # close to the urgent step's example "police" by its letters, and means Polish.
    heard = flow.understander.understand(node.id, speech or "")
    return None if heard.label == flow.urgent and heard.layer in ("urgent", "key") else chosen


def _can_confirm(flow: Flow, node: Node, label: str | None) -> bool:
    """Only a step with confirm words is asked about, never from the confirm step itself."""
    return (flow.confirm in flow.nodes and node.id != flow.confirm and label != flow.urgent
            and f"confirm.{label}" in flow.prompts)


def understand(flow: Flow, node: Node, digits: str | None, speech: str | None,
               confidence: float | None = None) -> Heard:
    """A key wins over words when both come; words go through the understander's layers."""
    digits = (digits or "").strip()
    if digits:
        return Heard("key", digits) if digits in menu_keys(flow, node) else Heard("wrong_key")
    if not (speech or "").strip():
        return Heard("silence", via="speech" if speech else "dtmf")
    if flow.understander is None or node.id not in flow.understander.menus:
        return Heard("not_understood", via="speech")
    result = flow.understander.understand(node.id, speech or "")
    if not result.understood:
        return Heard("not_understood", via="speech", understanding=result)
    unsure = _can_confirm(flow, node, result.label) and flow.understander.unsure(result, confidence)
    return Heard("key", result.key, via="speech", understanding=result, unsure=unsure)


def _retry(flow: Flow, state: CallState, node: Node, notice_name: str) -> Step:
    tries = state.tries + 1
    notice = flow.notices.get(notice_name)
    if tries >= int(flow.gather.get("max_tries", 3)):
        # The give-up words follow a notice that says what happened: silence, or
        # words the line heard but could not place (issue 14).
        return enter(flow, node.target("on_give_up") or flow.give_up, state.heard, notice)
    return Step(replace(state, tries=tries), (node.id,), notice, reprompt=True)


def confirm(flow: Flow, state: CallState, candidate: str) -> Step:
    """Ask "I think you asked about ...": yes goes to candidate (it travels in the URL)."""
    step = enter(flow, flow.confirm or flow.home, state.heard)
    return replace(step, state=replace(step.state, candidate=candidate))


def answer(flow: Flow, state: CallState, digits: str | None, speech: str | None,
           confidence: float | None = None, heard: Heard | None = None) -> Step:
    """The caller answered a menu (or said nothing): decide what comes next.

    heard: the answer as understand() read it, when the webhook has it already (it keeps
    it for the events); otherwise it is understood here."""
    node = flow.nodes.get(state.node)
    if node is None or node.type != "menu":
        return enter(flow, flow.home, state.heard, flow.notices.get("went_wrong"))
    if heard is None:
        heard = understand(flow, node, digits, speech, confidence)
    if heard.kind != "key":
        return _retry(flow, state, node, "no_input" if heard.kind == "silence" else heard.kind)
    if heard.unsure and heard.understanding is not None:
        return confirm(flow, state, heard.understanding.label or flow.home)
    if node.yes and heard.key == node.yes.key:
        candidate = state.candidate
        if candidate is not None and candidate in flow.nodes and candidate != node.id:
            return enter(flow, candidate, state.heard)
        return enter(flow, flow.home, state.heard, flow.notices.get("went_wrong"))
    for choice in node.choices:
        if choice.key == heard.key:
            return enter(flow, choice.to, state.heard)
    nav = next(n for n in flow.nav_for(node) if n.key == heard.key)
    target = {"repeat": node.id, "home": flow.home, "finish": flow.finish}[nav.name]
    return enter(flow, target, state.heard)


def after_action(flow: Flow, step: Step, outcome: str) -> Step:
    """An action node finished with an outcome (queued, need_number, opted_out, fail)."""
    node = flow.nodes[step.action]
    target = node.target(f"on_{outcome}") or node.target("on_fail")
    return enter(flow, target, step.state.heard, play=step.play)


def dialled(flow: Flow, state: CallState, dial_status: str | None) -> Step:
    """The <Dial> ended: on to `next` when the call was answered, else the failure path."""
    node = flow.nodes.get(state.node)
    if node is None or node.type != "dial":
        return enter(flow, flow.home, state.heard, flow.notices.get("went_wrong"))
    target = node.target("next") if dial_status == "completed" else node.target("on_fail")
    return enter(flow, target, state.heard)


def number_keyed(flow: Flow, state: CallState, valid: bool, silent: bool) -> Step:
    """A mobile number was keyed in (valid or not), or nothing was."""
    node = flow.nodes.get(state.node)
    if node is None or node.type != "number_entry":
        return enter(flow, flow.home, state.heard, flow.notices.get("went_wrong"))
    if valid:
        return enter(flow, node.target("next"), state.heard)
    tries = state.tries + 1
    if tries >= int(flow.gather.get("max_tries", 3)):
        return enter(flow, node.target("on_give_up"), state.heard)
    notice = flow.notices.get("no_input") if silent else node.invalid
    return Step(replace(state, tries=tries), (node.id,), notice, reprompt=False)
