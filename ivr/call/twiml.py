"""Pure: a Step -> TwiML, built with twilio.twiml.voice_response.

The words never change while the app runs, so each distinct Step is rendered
once and kept (Renderer caches by Step); a request then costs a dictionary
look-up, not a document build.
"""
from __future__ import annotations

import functools
from urllib.parse import urlencode

from twilio.twiml.voice_response import Gather, VoiceResponse

from ivr.call import wording
from ivr.call.engine import CallState, Step
from ivr.call.flow import Flow, Node

CACHE_SIZE = 4096  # distinct (step, read-back) pairs kept; the flow has a few hundred


def state_query(state: CallState, tries: bool = True) -> str:
    params = {}
    if tries and state.tries:
        params["t"] = str(state.tries)
    if state.heard:
        params["h"] = ",".join(sorted(state.heard))
    if state.candidate:
        params["c"] = state.candidate
    return f"?{urlencode(params, safe=',')}" if params else ""


def action_url(kind: str, state: CallState, tries: bool = True) -> str:
    """Path-absolute, so Twilio resolves it against our host whatever URL it is on."""
    return f"/voice/{kind}/{state.node}{state_query(state, tries)}"


class Renderer:
    def __init__(self, flow: Flow):
        self.flow = flow
        self.render = functools.lru_cache(maxsize=CACHE_SIZE)(self._render)

    # -- words --------------------------------------------------------------
    def _say(self, parent, prompt_key: str, extra: dict) -> None:
        flow = self.flow
        parent.say(flow.spoken(prompt_key, **extra), voice=flow.voice, language=flow.language)

    def _content(self, parent, node: Node, extra: dict) -> None:
        pause = int(self.flow.gather.get("pause", 1))
        for index, key in enumerate(node.say):
            if index and pause:
                parent.pause(length=pause)
            self._say(parent, key, extra)

    def _choices(self, parent, node: Node, extra: dict) -> None:
        for choice in node.choices:
            if choice.prompt:
                self._say(parent, choice.prompt, extra)
        for nav in self.flow.nav_for(node):
            self._say(parent, nav.prompt, extra)

    # -- verbs --------------------------------------------------------------
    def _gather(self, response: VoiceResponse, node: Node, url: str, **options) -> Gather:
        gather = self.flow.gather
        gather_options = {
            "action": url,
            "method": "POST",
            "timeout": node.timeout or gather.get("timeout", 6),
            "action_on_empty_result": True,
        }
        gather_options.update(options)
        return response.gather(**gather_options)

    def _menu(self, response, node: Node, step: Step, extra: dict) -> None:
        url = action_url("answer", step.state)
        phrases = [p for c in (*node.choices, *([node.yes] if node.yes else [])) for p in c.phrases]
        phrases += [p for nav in self.flow.nav_for(node) for p in nav.phrases]
        gather = self._gather(
            response, node, url,
            input="dtmf speech", num_digits=1,
            finish_on_key="",  # so # arrives as a key, not as "end of input"
            speech_timeout=self.flow.gather.get("speech_timeout", 2),
            speech_model=self.flow.gather.get("speech_model", "phone_call"),
            language=self.flow.language,
            hints=", ".join(dict.fromkeys(phrases)),
        )
        candidate = f"confirm.{step.state.candidate}"
        if step.state.candidate and candidate in self.flow.prompts:  # "I think you asked about ..."
            self._say(gather, candidate, extra)
        if not step.reprompt or step.state.candidate:
            self._content(gather, node, extra)
            gather.pause(length=int(self.flow.gather.get("pause", 1)) or 1)
        self._choices(gather, node, extra)
        response.redirect(url, method="POST")  # silence: Twilio goes on past <Gather>

    def _number_entry(self, response, node: Node, step: Step, extra: dict) -> None:
        url = action_url("number", step.state)
        gather = self._gather(response, node, url, input="dtmf", finish_on_key="#",
                              num_digits=15)
        self._content(gather, node, extra)
        response.redirect(url, method="POST")

    def _dial(self, response, node: Node, step: Step, extra: dict) -> None:
        self._content(response, node, extra)
        dial = response.dial(action=action_url("dialled", step.state, tries=False),
                             method="POST", timeout=node.timeout or 30)
        dial.number(self.flow.settings[node.dial])

    def _render(self, step: Step, entered: str | None = None) -> str:
        flow, response = self.flow, VoiceResponse()
        extra = {"entered": entered} if entered else {}
        if step.notice:
            self._say(response, step.notice, extra)
        for index, node_id in enumerate(step.play):
            node = flow.nodes[node_id]
            last = index == len(step.play) - 1
            if node.type in ("message", "goodbye") or not last:
                self._content(response, node, extra)
                response.pause(length=int(flow.gather.get("pause", 1)) or 1)
            elif node.type == "menu":
                self._menu(response, node, step, extra)
            elif node.type == "number_entry":
                self._number_entry(response, node, step, extra)
            elif node.type == "dial":
                self._dial(response, node, step, extra)
        if step.ended:
            response.hangup()
        return str(response)


def safety_twiml(flow: Flow) -> str:
    """Fixed words for when anything fails: 999, the NSPCC number, goodbye."""
    response = VoiceResponse()
    values = {name: wording.spoken_number(number) for name, number in flow.numbers.items()}
    for sentence in flow.safety:
        response.say(wording.fill(sentence, values), voice=flow.voice, language=flow.language)
    response.hangup()
    return str(response)
