"""Rules on numbers and links: the allow-lists, web addresses, and sources.yaml behind every sentence."""
from __future__ import annotations

import itertools
import re
from pathlib import Path
from urllib.parse import urlsplit

from ivr.call.flow import Flow
from ivr.config import REPO_ROOT
from ivr.flowtools import sources
from ivr.flowtools.rules.common import ALLOWED_DOMAINS, ALLOWED_NUMBERS, digits_of, every_text
from ivr.problems import FlowError, Problem
from ivr.yamlfile import YamlDoc
from ivr.yamlfile import load as load_yaml

_DIGIT_WORD = r"(?:zero|oh|nought|one|two|three|four|five|six|seven|eight|nine|double|treble|triple)"


DIGIT_RUN = re.compile(r"\d(?:[ \-]?\d){2,}")


DIGIT_WORD_RUN = re.compile(rf"\b{_DIGIT_WORD}(?:[\s,\-]+{_DIGIT_WORD}){{2,}}\b", re.IGNORECASE)


WEB_ADDRESS = re.compile(
    r"(?:(?P<scheme>[a-z]+)://)?(?P<host>(?:[a-z0-9-]+\.)+(?:uk|org|com|net|info|io|gov|edu|me|co|app|ly))"
    r"(?![\w.-]*\w)", re.IGNORECASE)


def _allow_list(path: Path, section: str, field: str) -> tuple[list[dict], list[Problem]]:
    """Entries of an allow-list file in schema/, or the problems that stop reading it."""
    try:
        doc = load_yaml(path)
    except FlowError as exc:
        return [], list(exc.problems)
    entries = doc.data.get(section) if isinstance(doc.data, dict) else None
    if not isinstance(entries, list) or not all(
            isinstance(entry, dict) and isinstance(entry.get(field), str) for entry in entries):
        return [], [doc.problem((section,), "E013",
                                f"{path.name} needs a list `{section}:` of entries, each with "
                                f"`{field}:` in quotes and `what:`")]
    return entries, []


def allowed_number_entries() -> tuple[list[dict], list[Problem]]:
    return _allow_list(ALLOWED_NUMBERS, "numbers", "number")


def allowed_numbers() -> tuple[dict[str, str], list[Problem]]:
    """Digits -> the number as the allow-list writes it."""
    entries, problems = allowed_number_entries()
    return {digits_of(entry["number"]): entry["number"] for entry in entries}, problems


def allowed_domains() -> tuple[list[str], list[Problem]]:
    entries, problems = _allow_list(ALLOWED_DOMAINS, "domains", "domain")
    return [entry["domain"].lower() for entry in entries], problems


def domain_allowed(host: str, domains: list[str]) -> bool:
    host = host.lower()
    return any(host in (domain, f"www.{domain}") for domain in domains)


def check_numbers(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    allowed, problems = allowed_numbers()
    listing = ", ".join(allowed.values())
    for name, number in flow.numbers.items():
        if allowed and digits_of(number) not in allowed:
            problems.append(prompts.problem(
                ("numbers", name), "E031",
                f"number {name!r} is {number}, which is not one of the numbers the line may give "
                f"({listing}; schema/allowed_numbers.yaml): check it against "
                f"sources.yaml"))
    texts = list(every_text(flow))
    texts += [(("links", key, "label"), link.label) for key, link in flow.links.items()]
    for path, text in texts:
        for match in itertools.chain(DIGIT_RUN.finditer(text), DIGIT_WORD_RUN.finditer(text)):
            problems.append(prompts.problem(
                path, "E032",
                f"{'.'.join(map(str, path))} writes the number {match.group(0)!r} straight into the "
                f"words: use its placeholder from numbers: (e.g. {{nspcc}}), so it is checked "
                f"against the allow-list and spoken digit by digit"))
    return problems


def check_web_addresses(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    domains, problems = allowed_domains()
    listing = "schema/allowed_domains.yaml"
    for key, link in flow.links.items():
        parts = urlsplit(link.url.strip())
        path = ("links", key, "url")
        if parts.scheme != "https":
            problems.append(prompts.problem(
                path, "E038", f"link {key!r} ({link.url}) must start with https://"))
        elif not parts.hostname or parts.netloc != parts.hostname or " " in link.url:
            problems.append(prompts.problem(
                path, "E038", f"link {key!r} ({link.url}) is not a plain web address "
                              f"like https://www.nspcc.org.uk"))
        elif domains and not domain_allowed(parts.hostname, domains):
            problems.append(prompts.problem(
                path, "E038",
                f"link {key!r} is on {parts.hostname}, which is not an allowed site ({listing}): "
                f"check it against sources.yaml"))
    texts = list(every_text(flow))
    texts += [(("links", key, "label"), link.label) for key, link in flow.links.items()]
    for path, text in texts:
        for match in WEB_ADDRESS.finditer(text):
            scheme, host = match.group("scheme"), match.group("host")
            if scheme and scheme.lower() != "https":
                problems.append(prompts.problem(
                    path, "E039", f"{'.'.join(map(str, path))} writes {match.group(0)!r}: "
                                  f"web addresses start with https://, or with the site's name alone"))
            elif domains and not domain_allowed(host, domains):
                problems.append(prompts.problem(
                    path, "E039",
                    f"{'.'.join(map(str, path))} writes the web address {host!r}, which is not an "
                    f"allowed site ({listing}): check it against sources.yaml"))
    return problems


def sources_file(flows: YamlDoc) -> Path:
    return sources_path(Path(flows.file))


def sources_path(flows_file: Path) -> Path:
    """sources.yaml beside the flow when there is one (a copy being edited), else the project's."""
    beside = flows_file.parent / "sources.yaml"
    return beside if beside.exists() else REPO_ROOT / "sources.yaml"


def check_sourced(flow: Flow, flows: YamlDoc, prompts: YamlDoc) -> list[Problem]:
    """Every sentence rests on claims, every claim on a source (sources.yaml)."""
    return sources.check_sources(prompts, sources_file(flows))
