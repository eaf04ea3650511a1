"""Load the flow and the words once, at start, and keep them ready to serve."""
from __future__ import annotations

import logging

from flask import current_app

from . import engine, twiml
from . import flow as flow_module

log = logging.getLogger(__name__)


def init_app(app) -> None:
    """Load, check and pre-render; a broken flow stops the app here (FlowError)."""
    flow, warnings = flow_module.load(app.config["FLOWS_FILE"], app.config["PROMPTS_DIR"],
                                      settings=app.config)
    for warning in warnings:
        log.warning("%s", warning)
    app.extensions["calm_line.flow"] = flow
    app.extensions["calm_line.renderer"] = _warmed(twiml.Renderer(flow), flow)
    app.extensions["calm_line.safety"] = twiml.safety_twiml(flow)


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
