"""`ivr script --diff REV`: what callers hear differently after a change.

For the reviewer of a change to flows.yaml or the words: step by step and
sentence by sentence, what a caller now hears instead, where each key now
leads, the seconds each path gains or loses, and how the text after the call
changes. REV is a git revision (HEAD~1, main) or a folder holding flows.yaml
and prompts/. Steps are matched by their ids in flows.yaml and named in words.
"""
from __future__ import annotations

import difflib
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from ivr.call import flow as flow_module
from ivr.call import speech
from ivr.call.flow import TARGET_FIELDS, Flow, Node
from ivr.flowtools import plain, script

MIN_SECONDS = 1.0  # a path whose time changes by less is not listed


class RevisionError(ValueError):
    """REV is neither a folder with the flow nor a git revision that holds it."""


# -- the old version ---------------------------------------------------------------------


def fetch(rev: str, flows_file, prompts_dir) -> tuple[str, str, Callable[[], None]]:
    """(flows file, prompts folder, cleanup) of the version REV names."""
    folder = Path(rev)
    if folder.is_dir():
        flows = folder / Path(flows_file).name
        if not flows.exists():
            flows = folder / "flows.yaml"
        return str(flows), str(folder / "prompts"), lambda: None
    flows_path = Path(flows_file).resolve()
    prompts_path = flow_module.prompts_file(prompts_dir).resolve()
    top = _git(flows_path.parent, "rev-parse", "--show-toplevel").strip()
    temp = Path(tempfile.mkdtemp(prefix="calm-line-diff-"))
    try:
        (temp / "prompts").mkdir()
        for path, target in ((flows_path, temp / "flows.yaml"),
                             (prompts_path, temp / "prompts" / prompts_path.name)):
            relative = path.relative_to(top).as_posix()
            target.write_text(_git(flows_path.parent, "show", f"{rev}:{relative}"),
                              encoding="utf-8")
    except (RevisionError, ValueError) as exc:
        shutil.rmtree(temp, ignore_errors=True)
        raise RevisionError(f"{rev}: {exc}") from None
    return str(temp / "flows.yaml"), str(temp / "prompts"), \
        lambda: shutil.rmtree(temp, ignore_errors=True)


def _git(where: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(where), *args], capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RevisionError(f"git could not run: {exc}") from None
    if done.returncode != 0:
        raise RevisionError("not a folder, and git says: "
                            + (done.stderr.strip().splitlines() or ["no such revision"])[-1])
    return done.stdout


# -- comparing ---------------------------------------------------------------------------


def quoted(text: str) -> str:
    return f"“{text}”"


def sentence_changes(old: list[str], new: list[str]) -> list[str]:
    """What a caller hears differently, sentence by sentence, in words."""
    out = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            continue
        before, after = old[a1:a2], new[b1:b2]
        if op == "replace" and len(before) == len(after):
            out += [f"Instead of {quoted(a)}, now hears {quoted(b)}"
                    for a, b in zip(before, after, strict=True)]
            continue
        where = f" (after {quoted(new[b1 - 1])})" if b1 > 0 and after and op == "insert" else ""
        out += [f"No longer hears {quoted(a)}" for a in before]
        out += [f"Now also hears {quoted(b)}{where}" for b in after]
    return out


class Compare:
    """The two versions, and the words to name their steps."""

    def __init__(self, old: Flow, new: Flow, technical: bool):
        self.old, self.new, self.technical = old, new, technical
        self.old_names, self.new_names = plain.titles(old), plain.titles(new)
        self.numbers = plain.numbered(new)

    def name(self, node_id: str, new: bool = True) -> str:
        # A step keeps the name it had before the change, so the reader can follow it.
        title = self.old_names.get(node_id) or self.new_names.get(node_id) or node_id
        if self.technical:
            title += f" [{node_id}]"
        return title

    def choices(self, old: Node, new: Node) -> list[str]:
        out = []
        before = {c.key: c for c in old.choices}
        after = {c.key: c for c in new.choices}
        for key in list(after) + [k for k in before if k not in after]:
            shown = plain._key(key)
            a, b = before.get(key), after.get(key)
            if a is None and b is not None:
                out.append(f"New: key {shown} goes to {self.name(b.to)}")
            elif b is None and a is not None:
                out.append(f"Key {shown} is gone (it went to {self.name(a.to, False)})")
            elif a is not None and b is not None:
                if a.to != b.to:
                    out.append(f"Key {shown} now goes to {self.name(b.to)}, "
                               f"not {self.name(a.to, False)}")
                gained = [p for p in b.phrases if p not in a.phrases]
                lost = [p for p in a.phrases if p not in b.phrases]
                if gained:
                    out.append(f"Key {shown} is now also chosen by saying "
                               + ", ".join(map(quoted, gained)))
                if lost:
                    out.append(f"Saying {', '.join(map(quoted, lost))} no longer chooses "
                               f"key {shown}")
        for field in TARGET_FIELDS:
            a_to, b_to = old.target(field), new.target(field)
            if a_to != b_to:
                what = plain.WAYS.get(field, field)
                out.append(f"{what}: now {self.name(b_to) if b_to else 'nowhere'}"
                           f" (was {self.name(a_to, False) if a_to else 'nowhere'})")
        return out

    def links(self, old: Node, new: Node) -> list[str]:
        out = [f"Now adds to the text: {self.new.links[k].label}" for k in new.links
               if k not in old.links and k in self.new.links]
        out += [f"No longer adds to the text: {self.old.links[k].label}" for k in old.links
                if k not in new.links and k in self.old.links]
        return out

    def step(self, node_id: str) -> list:
        old, new = self.old.nodes.get(node_id), self.new.nodes.get(node_id)
        if old is None and new is not None:
            return [("h3", f"New step: {self.name(node_id)}"),
                    ("p", "Callers who reach it hear:"), ("ol", plain.heard(self.new, new))]
        if new is None and old is not None:
            return [("h3", f"Removed: {self.name(node_id, False)}"),
                    ("p", "Callers no longer hear:"), ("ol", plain.heard(self.old, old))]
        assert old is not None and new is not None
        changes = sentence_changes(plain.heard(self.old, old), plain.heard(self.new, new))
        changes += self.choices(old, new) + self.links(old, new)
        if not changes:
            return []
        before, after = speech.step_seconds(self.old, old), speech.step_seconds(self.new, new)
        blocks: list = [("h3", self.name(node_id)), ("ul", changes)]
        if abs(after - before) >= MIN_SECONDS:
            blocks.append(("p", f"The step now takes about {speech.clock(after)} "
                                f"(was {speech.clock(before)}, {signed(after - before)})."))
        return blocks


def signed(secs: float) -> str:
    whole = int(round(secs))
    return ("+" if whole >= 0 else "-") + speech.clock(abs(whole)) if whole else "±0:00"


def _paths(compare: Compare) -> list:
    old_paths = {tuple(p): script.path_seconds(compare.old, p) for p in script.from_start(compare.old)}
    new_list = script.from_start(compare.new)
    rows = []
    names = {**compare.new_names, **compare.old_names}
    if compare.technical:
        names = {k: f"{v} [{k}]" for k, v in names.items()}
    for path in new_list:
        after = script.path_seconds(compare.new, path)
        before = old_paths.pop(tuple(path), None)
        shown = script.plain_path(path, names)
        if before is None:
            rows.append([shown, "(new path)", speech.clock(after), ""])
        elif abs(after - before) >= MIN_SECONDS:
            rows.append([shown, speech.clock(before), speech.clock(after), signed(after - before)])
    for path, before in old_paths.items():
        rows.append([script.plain_path(list(path), names), speech.clock(before), "(gone)", ""])
    return rows


def _texts(old: Flow, new: Flow, compare: Compare) -> list:
    from ivr.texts import body as textbody

    cases: list[tuple[str, list[str]]] = [("A caller who heard no step with links", [])]
    for node_id, node in new.nodes.items():
        if node.links or (node_id in old.nodes and old.nodes[node_id].links):
            cases.append((f"After {compare.name(node_id)}", [node_id]))
    blocks: list = []
    for label, heard in cases:
        before = textbody.compose(old, [h for h in heard if h in old.nodes])
        after = textbody.compose(new, heard)
        if before == after:
            continue
        lines = [f"No longer: {line}" for line in before.splitlines()
                 if line not in after.splitlines()]
        lines += [f"Now: {line}" for line in after.splitlines() if line not in before.splitlines()]
        segs = (textbody.segments(before), textbody.segments(after))
        if segs[0] != segs[1]:
            lines.append(f"Text messages: {segs[1]} (was {segs[0]})")
        blocks += [("p", label + ":"), ("ul", lines or ["The same lines, in another order."])]
    return blocks


def document(old: Flow, new: Flow, rev: str, technical: bool = False) -> list:
    """Blocks (script.to_markdown / to_html) of what callers hear differently from rev."""
    compare = Compare(old, new, technical)
    blocks: list = [("h1", f"Calm Line: what callers hear differently from {rev}")]
    steps: list = []
    for node_id in list(new.nodes) + [n for n in old.nodes if n not in new.nodes]:
        steps += compare.step(node_id)
    shared = [("In every menu", sentence_changes(
                  [old.written(old.prompts.get(n.prompt, "")) for n in old.nav_keys.values()],
                  [new.written(new.prompts.get(n.prompt, "")) for n in new.nav_keys.values()])),
              ("When the line did not catch what the caller did", sentence_changes(
                  [old.written(old.prompts.get(k, "")) for k in old.notices.values()],
                  [new.written(new.prompts.get(k, "")) for k in new.notices.values()])),
              ("If anything goes wrong with the line", sentence_changes(
                  [old.written(t) for t in old.safety], [new.written(t) for t in new.safety]))]
    paths, texts = _paths(compare), _texts(old, new, compare)
    if not steps and not any(changes for _, changes in shared) and not paths and not texts:
        blocks.append(("p", "Callers hear nothing different: every step's words, every "
                            "choice, every path's time and the text are the same."))
        return blocks
    blocks.append(("h2", "Step by step"))
    blocks += steps or [("p", "No step says anything different.")]
    for title, changes in shared:
        if changes:
            blocks += [("h3", title), ("ul", changes)]
    blocks.append(("h2", "Paths from the start: seconds gained or lost"))
    if paths:
        blocks.append(("table", ["path", "before", "after", "change"], paths))
    else:
        blocks.append(("p", f"No path takes a second more or less (within {MIN_SECONDS:g} s)."))
    blocks.append(("h2", "The text after the call"))
    blocks += texts or [("p", "The text is the same for every caller.")]
    return blocks
