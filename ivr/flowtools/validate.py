"""Load a flow and refuse it unless every check passes: the one way in, for the app and the tools.

The call package only parses and builds a flow; the checks (a linter's worth of
rules) live here, so loading the call needs no linter and the app factory runs
them once at start.
"""
from __future__ import annotations

import collections
import hashlib
import os
from pathlib import Path

from ivr import config
from ivr.call import flow as flow_module
from ivr.call.flow import Flow
from ivr.flowtools import checks, languages
from ivr.flowtools.rules import common
from ivr.flowtools.rules import numbers as number_rules
from ivr.problems import FlowError, Problem

# Flows that passed every check in this process, by what they were made from
# (checked_flows.move_to_end on use; the oldest goes past KEEP). The checks and
# the matchers take seconds, and a Flow is immutable, so a second app on the same
# files (a test suite builds hundreds; a CLI command beside the app) reuses it.
KEEP = 4
checked_flows: collections.OrderedDict[str, tuple[Flow, tuple[Problem, ...]]] = collections.OrderedDict()


def load(flows_file, prompts_dir, settings: dict | None = None) -> tuple[Flow, list[Problem]]:
    """Load, check and build the flow.

    Returns the flow and its warnings; raises FlowError listing every error
    (file, line, column, reason) so the app refuses to start on a broken flow.
    A flow made from the same bytes and settings as one already checked in this
    process is that flow again; a broken one is checked (and refused) every time.
    """
    # Only the settings a flow reads (flow.FLOW_SETTINGS): the key below is then exact.
    given = settings or {}
    settings = {key: given[key] for key in flow_module.FLOW_SETTINGS if key in given}
    key = fingerprint(flows_file, prompts_dir, settings)
    if key in checked_flows:
        checked_flows.move_to_end(key)
        flow, kept = checked_flows[key]
        return flow, list(kept)
    flow, warnings = _load(flows_file, prompts_dir, settings)
    checked_flows[key] = (flow, tuple(warnings))
    while len(checked_flows) > KEEP:
        checked_flows.popitem(last=False)
    return flow, warnings


def fingerprint(flows_file, prompts_dir, settings: dict) -> str:
    """A digest of everything a checked flow is made from: the bytes of the flow, the
    prompts, the sources beside it and the schema's files (allow-lists included, from
    wherever the rules read them now), and the flow's settings."""
    flows_path, prompts_path = Path(flows_file), Path(prompts_dir)
    files = [flows_path, number_rules.sources_path(flows_path), flow_module.SCHEMA_PATH,
             common.PROMPTS_SCHEMA, number_rules.ALLOWED_NUMBERS, number_rules.ALLOWED_DOMAINS,
             *(sorted(prompts_path.iterdir()) if prompts_path.is_dir() else [prompts_path])]
    digest = hashlib.sha256(repr(sorted(settings.items())).encode())
    for path in files:
        digest.update(f"\0{path}\0".encode())
        digest.update(path.read_bytes() if path.is_file() else b"\0missing")
    return digest.hexdigest()


def _load(flows_file, prompts_dir, settings: dict) -> tuple[Flow, list[Problem]]:
    flows_doc, prompts_doc = flow_module.load_docs(flows_file, prompts_dir)
    problems = flow_module.schema_problems(flows_doc, flow_module.load_schema())
    if not isinstance(prompts_doc.data, dict):
        problems.append(prompts_doc.problem((), "E011", "the prompts file must be a mapping"))
    else:
        problems += checks.prompts_schema_problems(prompts_doc)
    if problems:
        raise FlowError(problems)
    # Check the flow with every optional choice switched on, so a step that
    # only a setting unlocks (dialling the NSPCC) is checked too.
    every_choice = flow_module.build(flows_doc, prompts_doc, {**settings, **flow_module.ALL_OPTIONAL})
    problems = checks.run_all(every_choice, flows_doc, prompts_doc)
    # Every other language (prompts/<code>.yaml), checked on the same flow.
    others, more = languages.load(every_choice, prompts_doc, flows_doc, prompts_dir)
    problems = sorted({*problems, *(checks.with_severity(p) for p in more)})
    if any(p.severity == "error" for p in problems):
        raise FlowError(problems)
    first = flow_module.build(flows_doc, prompts_doc, settings)
    return languages.rebuild(first, flows_doc, others), problems


def default_flows() -> str:
    return os.environ.get("FLOWS_FILE") or str(config.REPO_ROOT / "flows.yaml")


def default_prompts() -> str:
    return os.environ.get("PROMPTS_DIR") or str(config.REPO_ROOT / "prompts")
