"""Where the line's words come from: sources.yaml, checked against the prompts.

sources.yaml (at the root of the repo) lists each source page, each phone
number and link the line gives, and each claim the line makes with the
sources that say it. The prompts file maps every prompt to the claims it
rests on (`rests_on:`). These functions are pure: they read the two files
and return Problems or plain data; `ivr check` reports the Problems (code
E050) and `ivr script` shows each sentence's sources beside it.
"""
from __future__ import annotations

from pathlib import Path

from ivr.problems import Problem
from ivr.yamlfile import YamlDoc
from ivr.yamlfile import load as load_yaml

CODE = "E050"
SECTIONS = ("sources", "numbers", "links", "claims")


def load_sources(path: str | Path) -> dict:
    """sources.yaml as plain data: {"sources": {}, "numbers": {}, "links": {}, "claims": {}}.

    Raises FlowError (from ivr.yamlfile) when the file cannot be read or parsed.
    A missing or empty section comes back as an empty mapping.
    """
    data = load_yaml(path).data
    data = data if isinstance(data, dict) else {}
    return {name: dict(data.get(name) or {}) for name in SECTIONS}


def rests_on_keys(prompts_data: dict) -> list[str]:
    """Every key that must have an entry in `rests_on`: each prompt, each sms line, and safety."""
    keys = [str(key) for key in (prompts_data.get("prompts") or {})]
    keys += [f"sms.{key}" for key in (prompts_data.get("sms") or {})]
    if prompts_data.get("safety"):
        keys.append("safety")
    return keys


def _source_problems(doc: YamlDoc, sources: dict, label: str) -> list[Problem]:
    """A claim, number or link whose source is missing or unknown."""
    problems = []
    known = sources["sources"]
    for source_id, source in known.items():
        source = source if isinstance(source, dict) else {}
        missing = [field for field in ("organisation", "title", "checked") if not source.get(field)]
        address = str(source.get("address") or "")
        if not (address.startswith("https://") or source.get("file")):
            missing.append("address (https://...) or file")
        if missing:
            problems.append(doc.problem(
                ("rests_on",), CODE,
                f"source {source_id!r} in {label} needs {', '.join(missing)}"))
    for claim_id, claim in sources["claims"].items():
        ids = (claim or {}).get("sources") if isinstance(claim, dict) else None
        if not ids:
            problems.append(doc.problem(
                ("rests_on",), CODE,
                f"claim {claim_id!r} in {label} names no source: add `sources: [...]` with at "
                f"least one id from `sources:`"))
            continue
        for source_id in ids:
            if source_id not in known:
                problems.append(doc.problem(
                    ("rests_on",), CODE,
                    f"claim {claim_id!r} in {label} names source {source_id!r}, which is not in "
                    f"`sources:`"))
    for section in ("numbers", "links"):
        for key, entry in sources[section].items():
            source_id = entry.get("source") if isinstance(entry, dict) else None
            if source_id not in known:
                problems.append(doc.problem(
                    (section, key), CODE,
                    f"{section[:-1]} {key!r} in {label} has source {source_id!r}, which is not "
                    f"in `sources:`"))
    return problems


def _value_problems(doc: YamlDoc, sources: dict, label: str) -> list[Problem]:
    """A number or link in the prompts that differs from sources.yaml (either way round)."""
    data = doc.data if isinstance(doc.data, dict) else {}
    numbers = {str(k): str(v) for k, v in (data.get("numbers") or {}).items()}
    links = {str(k): str((v or {}).get("url", "")) for k, v in (data.get("links") or {}).items()
             if isinstance(v, dict)}
    return (_differences(doc, "numbers", "number", (), numbers,
                         {str(k): str((v or {}).get("number", "")) for k, v in sources["numbers"].items()},
                         label)
            + _differences(doc, "links", "link", ("url",), links,
                           {str(k): str((v or {}).get("url", "")) for k, v in sources["links"].items()},
                           label))


def _differences(doc: YamlDoc, section: str, kind: str, field: tuple, ours: dict, theirs: dict,
                 label: str) -> list[Problem]:
    """One section's values (numbers or links' addresses) against sources.yaml's, key by key."""
    problems = []
    for key in sorted(set(ours) | set(theirs)):
        if key not in theirs:
            problems.append(doc.problem((section, key), CODE,
                                        f"{kind} {key!r} ({ours[key]}) is not in {label}: add it "
                                        f"there with its source"))
        elif key not in ours:
            problems.append(doc.problem((section,), CODE,
                                        f"{label} lists {kind} {key!r} ({theirs[key]}), which the "
                                        f"prompts do not have"))
        elif ours[key] != theirs[key]:
            problems.append(doc.problem((section, key, *field), CODE,
                                        f"{kind} {key!r} is {ours[key]} here but {theirs[key]} in "
                                        f"{label}: check it against its source"))
    return problems


def _rests_on_problems(doc: YamlDoc, sources: dict) -> list[Problem]:
    """A prompt with no claims, a claim id that is unknown, an entry for no prompt."""
    data = doc.data if isinstance(doc.data, dict) else {}
    rests_on = data.get("rests_on")
    rests_on = rests_on if isinstance(rests_on, dict) else {}
    claims = sources["claims"]
    wanted = rests_on_keys(data)
    problems = []
    for key in wanted:
        if key in rests_on and rests_on[key]:
            continue
        path: tuple[str, ...] = ("prompts", key)
        if key.startswith("sms."):
            path = ("sms", key.removeprefix("sms."))
        elif key == "safety":
            path = ("safety",)
        problems.append(doc.problem(
            path, CODE,
            f"{key} rests on no claim: add `{key}: [claim ids]` under `rests_on:` (the claims "
            f"are in sources.yaml)"))
    for key, ids in rests_on.items():
        if key not in wanted:
            problems.append(doc.problem(("rests_on", key), CODE,
                                        f"rests_on names {key!r}, which is not a prompt"))
            continue
        for index, claim_id in enumerate(ids if isinstance(ids, list) else [ids]):
            if claim_id not in claims:
                problems.append(doc.problem(
                    ("rests_on", key, index), CODE,
                    f"{key} rests on claim {claim_id!r}, which is not in sources.yaml `claims:`"))
    return problems


def check_sources(prompts_doc: YamlDoc, sources_path: str | Path) -> list[Problem]:
    """Every problem between the prompts and sources.yaml, as errors (E050) at the prompts' lines.

    A prompt (or sms line, or the safety words) with no `rests_on` entry; a
    `rests_on` naming an unknown claim or no prompt; a claim with no source or
    an unknown one; a number or link that differs from sources.yaml.
    """
    label = Path(sources_path).name
    try:
        sources = load_sources(sources_path)
    except Exception as exc:  # FlowError, with the sources file's own line
        problems = getattr(exc, "problems", None)
        if problems:
            return list(problems)
        return [prompts_doc.problem(("rests_on",), CODE, f"cannot read {label}: {exc}")]
    return (_rests_on_problems(prompts_doc, sources)
            + _source_problems(prompts_doc, sources, label)
            + _value_problems(prompts_doc, sources, label))


def sources_for(prompt_key: str, prompts_data: dict, sources: dict) -> list[dict]:
    """The sources a prompt rests on, each once, in the order its claims name them.

    Each is the source's entry with its id added: {"id", "organisation",
    "title", "address" or "file", "checked", "note"?, "claims": [claim ids]}.
    Unknown claims or sources are skipped (`check_sources` reports them).
    """
    rests_on = (prompts_data or {}).get("rests_on") or {}
    found: dict[str, dict] = {}
    for claim_id in rests_on.get(prompt_key) or []:
        claim = sources.get("claims", {}).get(claim_id)
        if not isinstance(claim, dict):
            continue
        for source_id in claim.get("sources") or []:
            source = sources.get("sources", {}).get(source_id)
            if not isinstance(source, dict):
                continue
            entry = found.setdefault(source_id, {"id": source_id, **source, "claims": []})
            entry["claims"].append(claim_id)
    return list(found.values())


def cite(found: list[dict]) -> str:
    """One line for the script, beside a sentence: 'Organisation, "Title" (checked 2026-11-30); ...'.

    `found` is what sources_for returns; "" when a sentence rests on nothing.
    """
    parts = []
    for source in found:
        where = source.get("address") or source.get("file") or ""
        parts.append(f'{source.get("organisation", source.get("id", "?"))}, '
                     f'"{source.get("title", "")}" ({where}, checked {source.get("checked", "?")})')
    return "; ".join(parts)
