"""Load the flow and the words once, at start, and keep them ready to serve."""
from __future__ import annotations

import logging

from flask import current_app

from ivr.call import engine, twiml
from ivr.call import flow as flow_module

log = logging.getLogger(__name__)


def init_app(app, flow: flow_module.Flow, warnings=()) -> None:
    """Keep a flow that was loaded and checked (ivr.flowtools.validate) and pre-render it."""
    for warning in warnings:
        log.warning("%s", warning)
    app.extensions["calm_line.flow"] = flow
    app.extensions["calm_line.renderer"] = _warmed(twiml.Renderer(flow), flow)
    app.extensions["calm_line.safety"] = twiml.safety_twiml(flow)
    # Steps whose words read back a keyed-in number: found once, not on every request.
    app.extensions["calm_line.read_back"] = frozenset(
        node.id for node in flow.nodes.values()
        if any("{entered}" in flow.prompts.get(key, "") for key in node.say))


def _warmed(renderer: twiml.Renderer, flow) -> twiml.Renderer:
    """Render every step once now: the first callers get a cached answer, and a step
    that cannot be rendered stops the app at start rather than mid-call."""
    for node_id in flow.nodes:
        step = engine.enter(flow, node_id)
        if not step.action:
            renderer.render(step)
    return renderer


def flow() -> flow_module.Flow:
    return current_app.extensions["calm_line.flow"]


def renderer() -> twiml.Renderer:
    return current_app.extensions["calm_line.renderer"]


def safety() -> str:
    return current_app.extensions["calm_line.safety"]


def reads_back(node_ids) -> bool:
    """Whether any of these steps says the number the caller keyed in ({entered})."""
    return not current_app.extensions["calm_line.read_back"].isdisjoint(node_ids)
