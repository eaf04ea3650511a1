"""What the rules share: problem paths, did-you-mean, digits and numbers in words."""
from __future__ import annotations

import difflib
import re

from ivr.call.flow import Flow
from ivr.config import REPO_ROOT

URGENT_KEY = "9"


MAX_CHOICES = 5  # DESIGN.md: "The menu offers at most five choices at once"


FIRST_WORDS = 25  # DESIGN.md: the 999 instruction within the first 25 spoken words


SCHEMA_DIR = REPO_ROOT / "schema"


PROMPTS_SCHEMA = SCHEMA_DIR / "prompts.schema.json"


ALLOWED_NUMBERS = SCHEMA_DIR / "allowed_numbers.yaml"


ALLOWED_DOMAINS = SCHEMA_DIR / "allowed_domains.yaml"


def node_path(node_id, *rest):
    return ("nodes", node_id, *rest)


def normal_phrase(phrase: str) -> str:
    """A phrase as the engine compares it (engine._normalise): lower case, no punctuation."""
    return " ".join(re.sub(r"[^\w']+", " ", phrase.lower()).split())


def did_you_mean(name, known, otherwise: str = "") -> str:
    """': did you mean 'talk'?' for a name that is nearly one of known, else ': otherwise'."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.75)
    if close:
        return f": did you mean {close[0]!r}?"
    return f": {otherwise}" if otherwise else ""


def digits_of(text: str) -> str:
    return re.sub(r"\D", "", text)


def numbers_in(text: str) -> set[str]:
    """Every run of digits (groups joined) in a text."""
    return {digits_of(run) for run in re.findall(r"\d(?:[ ,\-]*\d)*", text)}


def every_text(flow: Flow):
    """(path in the prompts file, template) for every text the line says or sends."""
    yield from ((("prompts", key), text) for key, text in flow.prompts.items())
    yield from ((("safety", index), text) for index, text in enumerate(flow.safety))
    yield from ((("sms", key), text) for key, text in flow.sms.items())
