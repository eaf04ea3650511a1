"""Pure: a Step -> TwiML, built with twilio.twiml.voice_response.

The words never change while the app runs, so each distinct Step is rendered
once and kept (Renderer caches by Step); a request then costs a dictionary
look-up, not a document build.
"""
from __future__ import annotations

import functools
from urllib.parse import urlencode

from twilio.twiml.voice_response import Gather, VoiceResponse

from ivr.call import engine, playlist, wording
from ivr.call.engine import CallState, Step
from ivr.call.flow import Flow, Node

CACHE_SIZE = 4096  # distinct (step, read-back) pairs kept; the flow has a few hundred


def state_query(state: CallState, tries: bool = True, language: str | None = None) -> str:
    params = {"l": language} if language else {}
    if tries and state.tries:
        params["t"] = str(state.tries)
    if state.heard:
        params["h"] = ",".join(sorted(state.heard))
    if state.candidate:
        params["c"] = state.candidate
    return f"?{urlencode(params, safe=',')}" if params else ""


def action_url(kind: str, state: CallState, tries: bool = True, language: str | None = None) -> str:
    """Path-absolute, so Twilio resolves it against our host whatever URL it is on.
    The call's language (any but the first) travels here too, as l=pl-PL."""
    return f"/voice/{kind}/{state.node}{state_query(state, tries, language)}"


class Renderer:
    def __init__(self, flow: Flow):
        self.flow = flow
        self.render = functools.lru_cache(maxsize=CACHE_SIZE)(self._render)

    # -- words ---------------------------------------------------------------
    def _say(self, parent, prompt_key: str, extra: dict, lang: str = "") -> None:
        flow = self.flow
        offer = next((o for o in flow.offers if o.code == lang), None) if lang else None
        voice, language = (offer.voice, offer.language) if offer else (flow.voice, flow.language)
        parent.say(flow.spoken(prompt_key, **extra), voice=voice, language=language)

    def _url(self, kind: str, state: CallState, tries: bool = True) -> str:
        return action_url(kind, state, tries, self.flow.url_language)

    def _play(self, parent, parts, extra: dict) -> None:
        for part in parts:
            if part.key:
                self._say(parent, part.key, extra, part.lang)
            elif part.pause:
                parent.pause(length=int(part.pause) or 1)

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

    def _menu(self, response, node: Node, step: Step) -> Gather:
        url = self._url("answer", step.state)
        if not self.flow.speech:  # a language Twilio cannot recognise: keys alone
            return self._gather(response, node, url, input="dtmf", num_digits=1, finish_on_key="")
        phrases = [p for c in (*node.choices, *([node.yes] if node.yes else [])) for p in c.phrases]
        phrases += [p for nav in self.flow.nav_for(node) for p in nav.phrases]
        if engine.offers_heard_at(self.flow, node):  # "po polsku": so this recogniser hears it
            phrases += [word for offer in self.flow.offers for word in offer.words]
        return self._gather(
            response, node, url,
            input="dtmf speech", num_digits=1,
            finish_on_key="",  # so # arrives as a key, not as "end of input"
            speech_timeout=self.flow.gather.get("speech_timeout", 2),
            speech_model=self.flow.gather.get("speech_model", "phone_call"),
            language=self.flow.language,
            hints=", ".join(dict.fromkeys(phrases)),
        )

    def _number_entry(self, response, node: Node, step: Step) -> Gather:
        url = self._url("number", step.state)
        return self._gather(response, node, url, input="dtmf", finish_on_key="#",
                            num_digits=15)

    def _dial(self, response, node: Node, step: Step) -> None:
        dial = response.dial(action=self._url("dialled", step.state, tries=False),
                             method="POST", timeout=node.timeout or 30)
        dial.number(self.flow.settings[node.dial])

    def _render(self, step: Step, entered: str | None = None) -> str:
        """The playlist (playlist.py) as TwiML: what cannot be cut, then the <Gather>
        holding everything else, then a redirect for when the caller says nothing."""
        flow, response = self.flow, VoiceResponse()
        extra = {"entered": entered} if entered else {}
        plan = playlist.playlist(flow, step)
        self._play(response, plan.before, extra)
        node = flow.nodes[step.play[-1]] if step.play else None
        if node is not None and plan.waits in playlist.GATHERS:
            gather = (self._menu if plan.waits == "menu" else self._number_entry)(
                response, node, step)
            self._play(gather, plan.inside, extra)
            # silence: Twilio goes on past <Gather>, to the same answer URL
            response.redirect(gather.attrs["action"], method="POST")
        elif node is not None and plan.waits == "dial":
            self._dial(response, node, step)
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
