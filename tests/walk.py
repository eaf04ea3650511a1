"""Paths through the shipped flow, found with the pure engine, for tests to dial."""
from __future__ import annotations

from collections import deque

from ivr.call import engine
from ivr.call.flow import Flow


def key_paths(flow: Flow) -> dict[str, list[str]]:
    """The shortest list of keys that reaches each step that waits for the caller."""
    first = engine.start(flow)
    paths = {first.node: []}
    queue = deque([(first.state, [])])
    while queue:
        state, keys = queue.popleft()
        node = flow.nodes[state.node]
        options = [c.key for c in node.choices] + [n.key for n in flow.nav_for(node)]
        for key in options:
            step = engine.answer(flow, state, key, None)
            if step.action:  # needs the database: the outcome "queued" is the common one
                step = engine.after_action(flow, step, "queued")
            if step.node not in paths:
                paths[step.node] = [*keys, key]
                if flow.nodes[step.node].type == "menu":
                    queue.append((step.state, [*keys, key]))
    return paths
