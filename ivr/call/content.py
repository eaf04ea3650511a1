"""Load the flow and the words once, at start, and keep them ready to serve."""
from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

from flask import current_app, g, has_request_context, request

from ivr.call import engine, twiml
from ivr.call import flow as flow_module

log = logging.getLogger(__name__)


def init_app(app, flow: flow_module.Flow, warnings=()) -> None:
    """Keep a flow that was loaded and checked (ivr.flowtools.validate) and pre-render it."""
    for warning in warnings:
        # A draft translation (W007) is known and shown by `ivr check` and the script;
        # at every start it would only be noise (INFO), the rest are faults (WARNING).
        log.log(logging.INFO if getattr(warning, "code", "") == "W007" else logging.WARNING,
                "%s", warning)
    app.extensions["calm_line.flow"] = flow
    # One renderer and one set of safety words per language (flow.all_languages).
    app.extensions["calm_line.renderers"] = {
        each.code: _warmed(twiml.Renderer(each), each) for each in flow.all_languages}
    app.extensions["calm_line.renderer"] = app.extensions["calm_line.renderers"][flow.code]
    app.extensions["calm_line.safety"] = {
        each.code: twiml.safety_twiml(each) for each in flow.all_languages}
    # Steps whose words read back a keyed-in number: found once, not on every request.
    app.extensions["calm_line.read_back"] = frozenset(
        node.id for each in flow.all_languages for node in each.nodes.values()
        if any("{entered}" in each.prompts.get(key, "") for key in node.say))


def _warmed(renderer: twiml.Renderer, flow) -> twiml.Renderer:
    """Render every step once now: the first callers get a cached answer, and a step
    that cannot be rendered stops the app at start rather than mid-call."""
    for node_id in flow.nodes:
        step = engine.enter(flow, node_id)
        if not step.action:
            renderer.render(step)
    return renderer


def first_flow() -> flow_module.Flow:
    """The first language's flow (flows.yaml with prompts/en-GB.yaml), holding the others."""
    return current_app.extensions["calm_line.flow"]


def choose(code: str) -> None:
    """From now on in this request, the call is in this language (the caller pressed its key)."""
    g.calm_line_language = code


def language() -> str | None:
    """The call's language: chosen in this request, else l= in the URL (signed by Twilio)."""
    if not has_request_context():
        return None
    return g.get("calm_line_language") or request.args.get("l")


def flow() -> flow_module.Flow:
    """The flow in the call's language; an unknown l= is the first language, never an error."""
    first = first_flow()
    return first.in_language(language()) or first


def renderer(call_flow: flow_module.Flow | None = None) -> twiml.Renderer:
    """The renderer of the call's language (of call_flow, when the webhook has it already)."""
    code, extensions = (call_flow or flow()).code, current_app.extensions
    if code == extensions["calm_line.flow"].code:
        return extensions["calm_line.renderer"]
    return extensions["calm_line.renderers"][code]


def safety() -> str:
    return current_app.extensions["calm_line.safety"][flow().code]


def safety_for_url(url: str | None) -> str:
    """The safety words in the language of a URL the line gave Twilio (its l=, as in
    Twilio's ErrorUrl to the fallback URL), else the first language's. Never fails: it
    answers when everything else has."""
    words = current_app.extensions["calm_line.safety"]
    first = first_flow()
    try:
        code = parse_qs(urlsplit(url or "").query).get("l", [""])[0]
        return words[(first.in_language(code) or first).code]
    except Exception:  # a URL that cannot be read: the first language, as for any call
        log.warning("fallback: could not read the language of the URL that failed")
        return words[first.code]


def reads_back(node_ids) -> bool:
    """Whether any of these steps says the number the caller keyed in ({entered})."""
    return not current_app.extensions["calm_line.read_back"].isdisjoint(node_ids)
