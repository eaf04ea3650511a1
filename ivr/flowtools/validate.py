"""Load a flow and refuse it unless every check passes: the one way in, for the app and the tools.

The call package only parses and builds a flow; the checks (a linter's worth of
rules) live here, so loading the call needs no linter and the app factory runs
them once at start.
"""
from __future__ import annotations

import os

from ivr import config
from ivr.call import flow as flow_module
from ivr.call.flow import Flow
from ivr.flowtools import checks, languages
from ivr.problems import FlowError, Problem


def load(flows_file, prompts_dir, settings: dict | None = None) -> tuple[Flow, list[Problem]]:
    """Load, check and build the flow.

    Returns the flow and its warnings; raises FlowError listing every error
    (file, line, column, reason) so the app refuses to start on a broken flow.
    """
    settings = settings or {}
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
