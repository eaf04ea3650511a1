"""What the line says, read like the guidance: what it must say, where, and what it must never say.

Everything here reads the repo only: sources.yaml (every source, number,
link and claim), the prompts' `rests_on:`, and the words a caller hears when
the flow is walked by key (tests/walk.py) through the app, as Twilio would.
docs/guidance.md explains each rule and what the line chose not to say.
"""
from __future__ import annotations

import re

import pytest
import yaml
from walk import key_paths

from ivr.config import REPO_ROOT
from ivr.flowtools.validate import load

FLOW, _ = load(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts")
PATHS = key_paths(FLOW)
PROMPTS = yaml.safe_load((REPO_ROOT / "prompts" / "en-GB.yaml").read_text())
SOURCES = yaml.safe_load((REPO_ROOT / "sources.yaml").read_text())
MENUS_WITH_9 = [n.id for n in FLOW.nodes.values() if n.type == "menu" and n.id in PATHS
                and any(c.key == "9" and c.prompt for c in n.choices)]
CHILDLINE_SPOKEN = "0 8 0 0, 1 1 1 1"


@pytest.fixture(scope="module")
def heard(tmp_path_factory) -> dict[str, str]:
    """The words a caller hears on reaching each step by key: {step: words of that turn}.

    "call" holds the first turn of every call (the welcome, then the main menu).
    """
    from conftest import make_app

    from ivr.call.caller import Caller, FlaskTransport

    app = make_app(tmp_path_factory.mktemp("content"), NSPCC_DIAL_NUMBER="+448088005000")
    words = {}
    for node_id, keys in PATHS.items():
        caller = Caller(FlaskTransport(app), dial_status="busy")
        caller.dial()
        if not keys:
            words["call"] = caller.last.text
        for key in keys:
            caller.press(key)
        assert caller.last.steps[-1] == node_id
        words[node_id] = caller.last.text
    return words


@pytest.fixture(scope="module")
def everything(heard) -> str:
    """Every word the line says on any path, and every text it can send."""
    texts = [FLOW.written(text) for text in FLOW.sms.values()]
    texts += [FLOW.written(text) for text in FLOW.safety]
    return " ".join([*heard.values(), *texts])


# -- sources.yaml: the numbers, the links, and what each prompt rests on --------------


def test_every_number_in_the_prompts_is_the_one_in_sources_yaml():
    assert dict(FLOW.numbers) == {k: v["number"] for k, v in SOURCES["numbers"].items()}


def test_every_link_in_the_prompts_is_the_one_in_sources_yaml():
    assert {k: link.url for k, link in FLOW.links.items()} == {
        k: v["url"] for k, v in SOURCES["links"].items()}


@pytest.mark.parametrize("section", ["numbers", "links"])
def test_each_number_and_link_names_a_known_source_and_when_it_was_checked(section):
    for key, entry in SOURCES[section].items():
        assert entry["source"] in SOURCES["sources"], f"{section}.{key}"
        assert str(entry["checked"]) == "2026-11-30", f"{section}.{key}"
        assert entry["what"]


def test_every_prompt_rests_on_known_claims():
    rests_on = PROMPTS["rests_on"]
    wanted = list(PROMPTS["prompts"]) + [f"sms.{k}" for k in PROMPTS["sms"]] + ["safety"]
    assert sorted(rests_on) == sorted(wanted)
    for key, claims in rests_on.items():
        assert claims, f"{key} rests on nothing"
        unknown = [c for c in claims if c not in SOURCES["claims"]]
        assert not unknown, f"{key} rests on unknown claims {unknown}"


def test_every_claim_has_a_known_source():
    for claim_id, claim in SOURCES["claims"].items():
        assert claim["says"], claim_id
        assert claim["sources"], f"{claim_id} has no source"
        for source_id in claim["sources"]:
            assert source_id in SOURCES["sources"], f"{claim_id}: unknown source {source_id}"


def test_every_source_says_who_what_where_and_when():
    for source_id, source in SOURCES["sources"].items():
        assert source["organisation"] and source["title"], source_id
        assert str(source["checked"]) == "2026-11-30", source_id
        address = source.get("address", "")
        assert address.startswith("https://") or source.get("file") == "docs/design.md", source_id
    assert SOURCES["sources"]["dc-police-2015"]["organisation"] == "Devon and Cornwall Police"
    assert (REPO_ROOT / SOURCES["sources"]["calm-line-design"]["file"]).exists()


def test_navigation_rests_on_the_design_note_and_advice_does_not():
    assert SOURCES["claims"]["navigation"]["sources"] == ["calm-line-design"]
    for key in ("main.steps", "nav.repeat", "finish.yes", "steps.next"):
        assert PROMPTS["rests_on"][key] == ["navigation"]
    for key in ("urgent.sextortion", "welcome.image", "removal.upload", "steps.receiver"):
        assert "navigation" not in PROMPTS["rests_on"][key]


def test_every_claim_is_used_and_every_source_is_cited():
    used = {c for claims in PROMPTS["rests_on"].values() for c in claims}
    assert set(SOURCES["claims"]) == used
    cited = {s for claim in SOURCES["claims"].values() for s in claim["sources"]}
    cited |= {entry["source"] for section in ("numbers", "links") for entry in SOURCES[section].values()}
    assert set(SOURCES["sources"]) == cited


# -- What the line must say, and where --------------------------------------------------
# (rule, regular expression, the steps where a caller must hear it). Each
# must-fix point of issue N first, then each should-fix point the line adopts.
# "call" is the first turn of every call; a step's words are those heard on
# reaching it (its own words, then its choices).

MUST_SAY = [
    # Must fix 1: threats, money demands, adults and online-only contacts belong behind 9,
    # and the parent hears so in every menu.
    ("9 names threats, money demands, an adult or an online-only contact",
     r"press 9.*threats, demands for money, or an adult or someone known only online", MENUS_WITH_9),
    ("urgent: 999 first, and the line cannot call for you",
     r"^If a child is in immediate danger, hang up now and call 9 9 9\. This line cannot call the police",
     ["urgent"]),
    ("urgent: do not pay, or pay no more", r"do not pay\. If you have paid, pay no more", ["urgent"]),
    ("urgent: stop contact and block", r"stop all contact and block them", ["urgent"]),
    ("urgent: keep the messages, delete nothing",
     r"keep the messages, and do not delete anything", ["urgent"]),
    ("urgent: report to CEOP", r"report it to CEOP", ["urgent"]),
    ("urgent: the police on 101 when there is no immediate danger",
     r"no immediate danger, you can call the police on 1 0 1", ["urgent"]),
    ("urgent, more: an adult involved is child sexual abuse",
     r"adult is involved in any way.*child sexual abuse", ["urgent_more"]),
    ("urgent, more: the child is never to blame", r"never your child's fault", ["urgent_more"]),
    # Must fix 2: the receiver only when a known young person, with no pressure.
    ("receiver: only a young person your child knows, with no pressure",
     r"young person your child knows\? If there is no pressure, your child can ask them to delete it",
     ["steps"]),
    ("receiver: never an adult, a stranger or anyone threatening",
     r"adult, a stranger, or anyone making threats, do not contact them\. Block them, and keep the messages",
     ["steps"]),
    # Must fix 3: never look at the image, never ask for it; said early in every call.
    ("do not look at the image, do not ask to see or have it",
     r"do not look at the image, or ask your child to show it or send it to you", ["call"]),
    ("the school is not sent or shown the image",
     r"do not send the image to anyone at the school, or show it", ["school"]),
    # Must fix 4: the child's wellbeing.
    ("wellbeing: stay close; 999 if they may hurt themselves",
     r"stay close to your child\. If you fear they may hurt themselves, call 9 9 9", ["urgent"]),
    ("wellbeing: Childline any time",
     rf"Childline, free, at any time, on {CHILDLINE_SPOKEN}", ["urgent_more"]),
    ("Childline for the child, day or night", rf"Childline free, day or night, on {CHILDLINE_SPOKEN}",
     ["talk"]),
    # Must fix 5: Report Remove takes uploads or links.
    ("Report Remove: upload the image or video, or give links",
     r"upload the image or video, or give links to where it is", ["removal"]),
    # Should fix, adopted: reassurance first.
    ("reassurance: the child is not to blame, whoever they told",
     r"your child is not to blame\. If they told you, or another adult they trust", ["call"]),
    ("reassurance: 'not in trouble' comes first in what to do",
     r"^First, tell your child they are not in trouble with you", ["steps"]),
    ("the law protects the child", r"illegal\. That law is there to protect them", ["removal"]),
    ("police are usually proportionate", r"police usually deal with it without charges", ["steps_keep"]),
    ("why keep the original", r"original may be needed to get it taken down", ["steps_keep"]),
    ("devices: safe until advice, from whom",
     r"safe, and out of use, until you have had advice.*school's safeguarding lead, the police, or the NSPCC",
     ["steps_keep"]),
    ("devices: not a punishment; do not reset or wipe",
     r"not a punishment\. Do not reset or wipe a device", ["steps_keep"]),
    ("Take It Down: the original on the device, participating sites only",
     r"original must be on that device.*only with sites that take part", ["take_it_down"]),
    ("Report Remove age check: under 13 go straight on",
     r"under 13 go straight on\. Older children may be asked to prove their age", ["removal"]),
    ("Yoti explained, and keeps no ID", r"Yoti checks age only, and does not keep pictures of their ID",
     ["removal"]),
    ("the IWF removes only images that break the law; still report",
     r"only remove images that break the law, but it is always worth reporting", ["removal_more"]),
    ("an image that has spread: the school, no confronting, no searching",
     r"do not contact other families, and never search for it", ["school"]),
    ("the school's designated safeguarding lead", r"designated safeguarding lead", ["school"]),
    ("the NSPCC may share, said before putting a caller through",
     r"may share what you tell them with children's services.*To be put through to the NSPCC now",
     ["talk"]),
    ("CEOP explained", r"CEOP, the police team for online child abuse", ["urgent"]),
    ("the IWF explained", r"Internet Watch Foundation, a charity", ["removal"]),
    ("the text warns that its links name child-safety services",
     r"seen by anyone who uses this phone, and the links name child-safety services", ["finish"]),
    ("the booklet is named as older", r"older booklet called, So you got naked online", ["steps_more"]),
]


@pytest.mark.parametrize(("rule", "pattern", "where"), MUST_SAY, ids=[r[0] for r in MUST_SAY])
def test_the_line_says_it_where_it_belongs(heard, rule, pattern, where):
    assert where, rule
    for step in where:
        words = heard[step]
        assert re.search(pattern, words, re.IGNORECASE | re.DOTALL), f"{rule}: not heard in {step}:\n{words}"


def test_never_look_at_the_image_is_heard_early_in_every_call(heard):
    """Counted in the words of the caller's language: each other language's offer (its 999
    sentence and key, right after the English one, issue 18) is left out of the count."""
    call = heard["call"]
    for offer in FLOW.offers:
        for key in offer.prompts:
            assert FLOW.spoken(key) in call
            call = call.replace(FLOW.spoken(key), " ", 1)
    words = [w.lower() for w in re.findall(r"[\w']+", call)]
    at = next(i for i in range(len(words)) if words[i:i + 5] == ["do", "not", "look", "at", "the"])
    assert at < 80, f"heard at word {at} of the call"


def test_reassurance_comes_before_any_instruction_in_the_welcome(heard):
    call = heard["call"].lower()
    assert call.index("not to blame") < call.index("do not look at the image")
    assert call.index("9 9 9") < call.index("stay calm") < call.index("not the end of the world")


def test_the_urgent_branch_reaches_everything_a_threatened_family_needs(heard):
    """From any menu: 9, then 1, gives the sextortion and wellbeing advice in full."""
    urgent = heard["urgent"] + " " + heard["urgent_more"]
    for words in ("do not pay", "pay no more", "block them", "keep the messages",
                  "do not delete anything", "CEOP", "1 0 1", "call 9 9 9", "stay close",
                  "hurt themselves", CHILDLINE_SPOKEN, "child sexual abuse"):
        assert words.lower() in urgent.lower(), words
    assert "press 1" in heard["urgent"] and FLOW.nodes["urgent"].choices[0].key == "9"


def test_the_help_reply_is_neutral():
    """Anyone may read a text on a shared phone: the HELP reply names no subject."""
    reply = FLOW.written(FLOW.sms["help_reply"])
    assert not re.search(r"nude|image|sext|child|photo|picture|abuse", reply, re.IGNORECASE), reply
    assert "0808 800 5000" in reply and "999" in reply and "STOP" in reply


# -- What the line must never say -------------------------------------------------------

MUST_NEVER_SAY = [
    ("never send the image (Report Remove takes uploads)", r"never send the image"),
    ("the child gives a link, not the image", r"gives a link to where the image is"),
    ("talk honestly with the person who received it", r"talk honestly with the person who received it"),
    ("an honest conversation with the receiver", r"honest conversation"),
    ("blame: naughty", r"\bnaughty\b"),
    ("blame: stupid", r"\bstupid\b"),
    ("blame: silly", r"\bsilly\b"),
    ("blame: your fault", r"\byour fault\b"),
    ("blame: should have known", r"should have known"),
    ("shame", r"\bshame(ful)?\b|\bdisgusting\b|\bashamed\b"),
    ("punish the child", r"\bpunish (them|your child)\b"),
    ("confiscate (harsh, and not whose advice)", r"\bconfiscate"),
    ("cold words: the minor", r"\bthe minor\b"),
    ("promise: no police action", r"police will not|never be prosecuted|will not be charged"),
    ("search for the image", r"(?<!never )search for (the image|it)\b(?! yourself)"),
]


@pytest.mark.parametrize(("rule", "pattern"), MUST_NEVER_SAY, ids=[r[0] for r in MUST_NEVER_SAY])
def test_the_line_never_says_it(everything, rule, pattern):
    match = re.search(pattern, everything, re.IGNORECASE)
    assert match is None, f"{rule}: {everything[max(0, match.start() - 80):match.end() + 80]!r}"


def test_asking_someone_to_delete_it_is_always_conditional(everything):
    """'Ask that person to delete it' only with a known young person and no pressure."""
    sentences = re.split(r"(?<=[.?!])\s+", everything)
    for index, sentence in enumerate(sentences):
        if re.search(r"\bask (that person|them|the person)\b.*\bdelete\b", sentence, re.IGNORECASE):
            before = " ".join(sentences[max(0, index - 1):index + 1])
            assert "no pressure" in before and "young person your child knows" in before, sentence


def test_delete_is_never_heard_as_an_instruction_to_delete_evidence(everything):
    for sentence in re.split(r"(?<=[.?!])\s+", everything):
        if re.search(r"\bdelete\b", sentence, re.IGNORECASE):
            assert re.search(r"do not|ask them to delete", sentence, re.IGNORECASE), sentence


# -- The 2015 source page: every point current guidance does not overturn ----------------
# Each point of the Devon and Cornwall Police page (sources.yaml: dc-police-2015),
# with the words that say it now. Points current guidance changed are marked, and
# docs/guidance.md says why.

SOURCE_POINTS = {
    "Stay calm": ["stay calm"],
    "It's not the end of the world": ["not the end of the world"],
    "Positive that your child came to you or another trusted adult": [
        "If they told you, or another adult they trust, they did the right thing"],
    "Embarrassing for young people; get help and support straight away": [
        "embarrassing", "help and support, straight away"],
    "Establish what happened and where the image or video has gone": [
        "Talk to your child calmly", "what happened", "where the image or video has gone"],
    # Changed: only a known young person, no pressure; never an adult or anyone threatening.
    "Ask your child to speak to the receiver; ask them to delete it": [
        "young person your child knows", "ask them to delete it"],
    "Take it down from social media straight away": [
        "social media", "taken down straight away"],
    "Do not take copies, forward or delete": [
        "Do not copy the image, forward it to anyone, or delete it"],
    # Changed: kept safe and out of use, whose advice, not a punishment.
    "Confiscate devices with images until you have further advice": [
        "devices that hold the image safe, and out of use, until you have had advice"],
    "Speak to the school or college for advice and guidance": [
        "school or college", "advice and guidance"],
    "Call the NSPCC and ask for advice": ["call the NSPCC and ask for advice"],
    "Immediate risk: contact the police straight away": [
        "immediate risk", "contact the police straight away"],
    # Changed: the law is there to protect the child.
    "Under 18 and a nude image online is illegal, but you can get help": [
        "under 18", "illegal", "You can get help"],
    "Contact the website or social media site directly": [
        "report the image to the website or app"],
    "Report to the IWF, who will speak to the website to remove it": [
        "Internet Watch Foundation", "ask the website to remove it"],
    "Booklet 'So you got naked online'": ["So you got naked online"],
    "UK Safer Internet Centre: safety tools on social networks": [
        "UK Safer Internet Centre has safety tools"],
    "Parent Info: advice from expert organisations": ["Parent Info has advice from experts"],
    "Think u know (CEOP Education): film resource for parents and carers": [
        "CEOP Education has advice for parents and carers, with short films"],
    # Changed: uploads as well as links.
    "Childline and the IWF remove images of children": [
        "Childline and the Internet Watch Foundation", "Report Remove"],
    # Changed: under-13s need no age check.
    "Age checked with the Yoti app; Yoti does not store ID images": [
        "Yoti app", "does not keep pictures of their ID"],
}


@pytest.mark.parametrize("point", SOURCE_POINTS)
def test_every_point_of_the_source_page_is_said(everything, point):
    for words in SOURCE_POINTS[point]:
        assert words.lower() in everything.lower(), f"{point}: {words!r} is never said"


def test_every_number_the_line_speaks_is_one_of_the_checked_numbers(heard):
    spoken = {re.sub(r"\D", "", n) for n in FLOW.numbers.values()}
    digit_runs = re.findall(r"\d(?:[ ,]+\d)*", " ".join(heard.values()))
    heard_numbers = {re.sub(r"\D", "", run) for run in digit_runs}
    # Single digits are keys ("press 4"); longer runs are phone numbers, or ages.
    assert {n for n in heard_numbers if len(n) > 1} <= spoken | {"18", "13"}


def test_the_repo_stands_alone():
    """No word, link or test of the content leans on a folder beside the repo."""
    for path in [REPO_ROOT / "sources.yaml", REPO_ROOT / "flows.yaml", REPO_ROOT / "README.md",
                 *(REPO_ROOT / "prompts").glob("*.yaml"), *(REPO_ROOT / "docs").glob("*.md")]:
        assert ".." + "/shared" not in path.read_text(), path
