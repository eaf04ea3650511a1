"""`ivr understand "words" [--at STEP] [--json]`: where a caller's words would go, and why.

For staff changing examples or the urgent signals: the layer that decided
(key, urgent, yesno, nav, match, none), each choice's score, the closest
examples, the urgent signals heard (and those a negation cancelled), and
whether the line would ask "I think you asked about ..." first.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

from ivr.call import engine
from ivr.call.flow import ALL_OPTIONAL, Flow
from ivr.call.understanding.normalise import normalise
from ivr.flowtools import validate
from ivr.problems import FlowError


def explain(flow: Flow, step: str, words: str, confidence: float | None = None) -> dict:
    """Everything `ivr understand` prints, as plain data."""
    node = flow.nodes[step]
    heard = engine.understand(flow, node, None, words, confidence)
    result = heard.understanding
    data: dict[str, Any] = (dataclasses.asdict(result) if result
                            else {"label": None, "layer": "none", "scores": {}, "closest": ()})
    data["scores"] = dict(sorted((data.get("scores") or {}).items(), key=lambda kv: -kv[1]))
    data["closest"] = [{"choice": c[0], "example": c[1], "score": c[2]} for c in data.get("closest", ())]
    data.update(step=step, words=words, heard_as=normalise(words), confirm=heard.unsure,
                goes_to=_goes_to(flow, step, heard))
    return data


def _goes_to(flow: Flow, step: str, heard: engine.Heard) -> str | None:
    if heard.kind != "key":
        return None
    if heard.unsure:
        return flow.confirm
    return engine.answer(flow, engine.CallState(step), heard.key, None).node


def _text(data: dict) -> str:
    label = data["label"] or "nothing: \"Sorry, I did not understand that\""
    lines = [f"{data['words']!r} at {data['step']} (heard as {data['heard_as']!r})",
             f"  understood as: {label}" + (f" (key {data['key']})" if data.get("key") else "")
             + f", {data.get('score', 0):.2f} ({data['layer']})"]
    if data["confirm"]:
        lines.append(f"  the line would ask first: \"I think you asked about ...\" ({data['goes_to']})")
    elif data["goes_to"]:
        lines.append(f"  goes to: {data['goes_to']}")
    if data.get("signals"):
        lines.append("  urgent signals: " + "; ".join(data["signals"]))
    if data["scores"]:
        lines.append("  scores: " + ", ".join(f"{k} {v:.2f}" for k, v in data["scores"].items()))
    for c in data["closest"]:
        lines.append(f"  closest: {c['choice']} {c['score']:.2f} {c['example']!r}")
    return "\n".join(lines)


@click.command("understand")
@click.argument("words")
@click.option("--at", "step", help="The menu the caller is in (default: the main menu).")
@click.option("--confidence", type=click.FloatRange(0, 1),
              help="Twilio's Confidence for the words (default: none sent).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--flows", "flows_file", type=click.Path(dir_okay=False), default=None,
              help="The flow file (default: $FLOWS_FILE or ./flows.yaml).")
@click.option("--prompts", "prompts_dir", type=click.Path(file_okay=False), default=None,
              help="The folder of prompt files (default: $PROMPTS_DIR or ./prompts).")
def understand_command(words, step, confidence, as_json, flows_file, prompts_dir):
    """Where WORDS said at a menu would go: the layer, each choice's score, the closest examples."""
    try:
        flow, _ = validate.load(flows_file or validate.default_flows(),
                                prompts_dir or validate.default_prompts(),
                                dict(ALL_OPTIONAL))
    except FlowError as exc:
        raise click.ClickException("the flow has errors (run ivr check):\n"
                                   + "\n".join(map(str, exc.problems[:10]))) from None
    step = step or flow.home
    menus = [n for n, node in flow.nodes.items() if node.type == "menu"]
    if step not in menus:
        raise click.BadParameter(f"{step!r} is not a menu; one of: {', '.join(menus)}", param_hint="--at")
    data = explain(flow, step, words, confidence)
    click.echo(json.dumps(data, indent=2) if as_json else _text(data))
