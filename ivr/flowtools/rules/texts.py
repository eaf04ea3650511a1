"""Rules on the text after the call: GSM-7, segments, two texts at most, every label and heard number kept."""
from __future__ import annotations

import itertools

from ivr.call.flow import Flow, reachable
from ivr.flowtools.rules.common import digits_of, node_path
from ivr.problems import Problem
from ivr.texts import body as textbody
from ivr.yamlfile import YamlDoc

MAX_SEGMENTS = getattr(textbody, "MAX_SEGMENTS", 3)


MAX_TEXTS = 2  # a text too long for TEXT_MAX_SEGMENTS goes as two, never more


MAX_COMBINATIONS = 4096  # texts composed to check every combination of branches


def _not_gsm(text: str) -> str:
    return "".join(sorted({ch for ch in text if not textbody.is_gsm7(ch)}))


def check_texts(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    """Every text the line may send, for every combination of branches heard: GSM-7
    characters only, at most two texts of TEXT_MAX_SEGMENTS segments, every link with its
    label, every number the caller heard."""
    problems = []
    # A language with its own letters (sms_ascii beside sms) may send them (UCS-2):
    # its plain lines must be GSM-7 and every text must still fit (body.compose_parts).
    section, lines = ("sms_ascii", flow.sms_ascii) if flow.sms_ascii else ("sms", flow.sms)
    sources: list[tuple[tuple, str]] = [((section, key), flow.written(text)) for key, text in lines.items()]
    for key, link in flow.links.items():
        sources += [(("links", key, "label"), link.label), (("links", key, "url"), link.url)]
    for path, text in sources:
        odd = _not_gsm(textbody.plain(text))
        if odd:
            problems.append(prompts.problem(
                path, "E040",
                f"{'.'.join(map(str, path))} has {', '.join(repr(ch) for ch in odd)}, not in the "
                f"GSM-7 alphabet of texts: one such character makes the whole text cost twice as "
                f"many segments; write it with plain letters"))
        elif path[0] == section and textbody.segments(textbody.plain(text)) > textbody.max_segments(flow):
            problems.append(prompts.problem(
                path, "E041", f"{'.'.join(map(str, path))} alone is longer than "
                              f"{textbody.max_segments(flow)} "
                              f"SMS segments: shorten it"))
    if problems:
        return problems
    seen = reachable(flow)
    branches, by_links = [], set()
    fixed = " ".join(flow.written(text) for text in flow.sms.values())
    for node in flow.nodes.values():  # one branch for each different set of links and numbers
        numbers = tuple(textbody.numbers_heard(flow, [node.id]))
        kind = (node.links, numbers)
        gives = node.links or any(f"number_{n}" in flow.sms or flow.numbers[n] not in fixed
                                  for n in numbers)
        if gives and node.id in seen and kind not in by_links:
            by_links.add(kind)
            branches.append(node.id)
    combos = itertools.chain.from_iterable(
        itertools.combinations(branches, size) for size in range(len(branches) + 1))
    # Smallest first, so the report names the fewest branches; the longest text
    # (every branch) is always among them.
    for heard in [*itertools.islice(combos, MAX_COMBINATIONS), tuple(branches)]:
        problem = _text_problem(flow, flows, prompts, list(heard))
        if problem:
            return [problem]
    return []


def _text_missing(flow: Flow, heard: list[str], whole: str) -> list[str]:
    """What a caller who heard these branches would not find in their text: a link's label
    or address, or a number they heard (999 and the NSPCC always)."""
    missing = []
    for link in textbody.links_heard(flow, heard):
        if link.url not in whole and textbody._bare(link.url) not in whole.lower():
            missing.append(f"the link {link.key} ({link.url})")
        elif link.url in whole and f"{link.label}:\n{link.url}" not in whole:
            missing.append(f"the label of link {link.key} ({link.label!r})")
    names = [n for n, number in flow.numbers.items() if digits_of(number) in ("999", "08088005000")]
    for name in dict.fromkeys(names + textbody.numbers_heard(flow, heard)):
        if flow.numbers[name] not in whole:
            missing.append(f"the number {{{name}}} ({flow.numbers[name]}): add a line "
                           f"sms.number_{name} that gives it")
    return missing


def _text_problem(flow: Flow, flows: YamlDoc, prompts: YamlDoc, heard: list[str]) -> Problem | None:
    parts = textbody.compose_parts(flow, heard)
    limit = textbody.max_segments(flow)
    who = ", ".join(repr(b) for b in heard) or "no step with links"
    doc, where = (flows, node_path(heard[-1], "links")) if heard else (prompts, ("sms",))
    odd = _not_gsm("".join(parts))
    if odd and not flow.sms_ascii:
        return doc.problem(where, "E040", f"the text for a caller who heard {who} has "
                                          f"{odd!r}, outside the GSM-7 alphabet")
    counts = [textbody.segments(part) for part in parts]
    if len(parts) > MAX_TEXTS or max(counts) > limit:
        return doc.problem(
            where, "E041",
            f"the text for a caller who heard {who} takes {len(parts)} text(s) of "
            f"{', '.join(map(str, counts))} SMS segments (at most {MAX_TEXTS} texts of {limit}): "
            f"shorten the link labels or the sms lines in {prompts.file}, or add fewer links "
            f"to these steps")
    missing = _text_missing(flow, heard, "\n".join(parts))
    if missing:
        return doc.problem(where, "E045", f"the text for a caller who heard {who} lacks "
                                          f"{'; '.join(missing)}")
    return None
