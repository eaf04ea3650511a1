"""A practice call as JSON (schema version 1), for the simulator_calls table.

Never pickle: a row of the database must never be able to run code in the web
process. Only the fields below are read back, into the two known classes
(SimulatedCall and its Caller), their Entry and Turn records and TwiML as
text; anything else in a row makes it unreadable (the call is over), never
an object of another kind.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, fields
from typing import Any

from ivr.call.caller import Caller, Turn
from ivr.staff.simulator.call import Entry, SimulatedCall

VERSION = 1
_NOT_KEPT = ("flow", "text_reader", "transport", "validator")  # attached again on load


class Unreadable(ValueError):
    """A stored practice call this release cannot read."""


def _records(cls, items: Any) -> list:
    if not isinstance(items, list):
        raise Unreadable(f"{cls.__name__} records are not a list")
    names = {f.name for f in fields(cls)}
    out = []
    for item in items:
        if not isinstance(item, dict) or not set(item) <= names:
            raise Unreadable(f"not a {cls.__name__} record")
        out.append(cls(**item))
    return out


def _xml(element: ET.Element | None) -> str | None:
    return None if element is None else ET.tostring(element, encoding="unicode")


def _element(text: Any) -> ET.Element | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise Unreadable("TwiML is not text")
    return ET.fromstring(text)


def _plain(state: dict, skip: tuple[str, ...]) -> dict:
    return {k: v for k, v in state.items() if k not in skip and k not in _NOT_KEPT}


def dumps(call: SimulatedCall) -> str:
    caller = call.caller
    caller_state = _plain(caller.__getstate__(), ("turns", "pending", "_rest"))
    caller_state.update(turns=[asdict(t) for t in caller.turns], pending=_xml(caller.pending),
                        rest=[_xml(e) for e in caller._rest])
    call_state = _plain(call.__getstate__(), ("caller", "entries"))
    call_state["entries"] = [asdict(e) for e in call.entries]
    # Keys sorted: a call read back and stored again is the same text, whatever order
    # __setstate__ (which fills in fields older rows lack) leaves its attributes in.
    return json.dumps({"version": VERSION, "call": call_state, "caller": caller_state},
                      sort_keys=True)


def loads(text: str | bytes) -> SimulatedCall:
    """The practice call stored by dumps(); Unreadable for anything else."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unreadable("not JSON") from exc
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise Unreadable("not a practice call of schema version 1")
    call_state, caller_state = data.get("call"), data.get("caller")
    if not isinstance(call_state, dict) or not isinstance(caller_state, dict):
        raise Unreadable("no call or caller")
    try:
        caller = Caller.__new__(Caller)
        caller.__setstate__({
            **{k: v for k, v in caller_state.items() if k not in ("turns", "pending", "rest")},
            "turns": _records(Turn, caller_state.get("turns", [])),
            "pending": _element(caller_state.get("pending")),
            "_rest": [_element(e) for e in caller_state.get("rest", [])],
        })
        call = SimulatedCall.__new__(SimulatedCall)
        call.__setstate__({**{k: v for k, v in call_state.items() if k != "entries"},
                           "caller": caller,
                           "entries": _records(Entry, call_state.get("entries", []))})
    except (TypeError, ET.ParseError) as exc:
        raise Unreadable(str(exc)) from exc
    return call
