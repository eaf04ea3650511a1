"""Every point of the police advice page is said on some path, with the right numbers."""
from __future__ import annotations

import re

import pytest
from walk import key_paths

from ivr.config import REPO_ROOT
from ivr.flowtools.validate import load

FLOW, _ = load(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts")
SHARED = REPO_ROOT.parent / "shared" / "content"

# Each point of ../shared/content/000_08f2bfe5ffda8336.txt, with the words
# that say it on the line (all must be heard on some path).
SOURCE_POINTS = {
    "Stay calm": ["stay calm"],
    "It's not the end of the world": ["not the end of the world"],
    "Positive that your child came to you or another trusted adult": [
        "good thing that your child told you", "another adult they trust"],
    "Embarrassing for young people; get help and support straight away": [
        "embarrassing", "help and support straight away"],
    "Establish what happened and where the image or video has gone": [
        "talk to your child", "what happened", "where the image or video has gone"],
    "Ask your child to speak to the receiver, honestly": [
        "talk honestly with the person who received it"],
    "Ask them to delete it; take it down from social media straight away": [
        "delete it", "social media", "taken down straight away"],
    "Do not take copies, forward or delete": [
        "Do not copy the image, forward it to anyone, or delete it"],
    "Confiscate devices with images until you have further advice": [
        "devices that hold the image safe and out of use, until you have had advice"],
    "Speak to the school or college for advice and guidance": [
        "school or college", "advice and guidance"],
    "Call the NSPCC and ask for advice": ["call the NSPCC and ask for advice"],
    "Immediate risk: contact the police straight away": [
        "immediate risk", "contact the police straight away"],
    "Under 18 and a nude image online is illegal, but you can get help": [
        "under 18", "that is illegal", "you can get help"],
    "Contact the website or social media site directly": [
        "report the image to the website or app"],
    "Report to the IWF, who will speak to the website to remove it": [
        "Internet Watch Foundation", "ask the website to remove it"],
    "Booklet 'So you got naked online'": ["So you got naked online"],
    "UK Safer Internet Centre: safety tools on social networks": [
        "UK Safer Internet Centre has safety tools"],
    "Parent Info: advice from expert organisations": ["Parent Info has advice from experts"],
    "Think u know (CEOP Education): film resource for parents and carers": [
        "CEOP Education has short films for parents and carers"],
    "Childline and the IWF remove images; the child gives a link, not the image": [
        "Childline and the Internet Watch Foundation", "Report Remove",
        "gives a link to where the image is", "never send the image itself"],
    "Age and identity checked with the Yoti app; Yoti does not store ID images": [
        "Yoti app", "does not keep pictures of their ID"],
}


@pytest.fixture(scope="module")
def everything_said(tmp_path_factory):
    """The words of every step of the line, walked by key from the start."""
    from conftest import make_app

    from ivr.call.caller import Caller, FlaskTransport

    app = make_app(tmp_path_factory.mktemp("content"), NSPCC_DIAL_NUMBER="+448088005000")
    said = []
    for node_id, keys in key_paths(FLOW).items():
        caller = Caller(FlaskTransport(app), dial_status="busy")
        caller.dial()
        for key in keys:
            caller.press(key)
        assert caller.last.steps[-1] == node_id
        said.append(caller.transcript)
    return " ".join(said)


@pytest.mark.parametrize("point", SOURCE_POINTS)
def test_every_point_of_the_source_page_is_said(everything_said, point):
    for words in SOURCE_POINTS[point]:
        assert words.lower() in everything_said.lower(), f"{point}: {words!r} is never said"


def test_every_number_the_line_speaks_is_one_of_the_checked_numbers(everything_said):
    spoken = {re.sub(r"\D", "", n) for n in FLOW.numbers.values()}
    digit_runs = re.findall(r"\d(?:[ ,]+\d)*", everything_said)
    heard = {re.sub(r"\D", "", run) for run in digit_runs}
    # Single digits are keys ("press 4"); longer runs are phone numbers.
    assert {n for n in heard if len(n) > 1} <= spoken | {"18"}  # "under 18"


@pytest.mark.skipif(not (SHARED / "facts.md").exists(), reason="../shared is not beside this clone")
def test_each_number_equals_facts_md():
    facts = (SHARED / "facts.md").read_text()
    for name, number in FLOW.numbers.items():
        assert f"| {number} |" in facts, f"{name}: {number} is not in facts.md"


@pytest.mark.skipif(not (SHARED / "facts.md").exists(), reason="../shared is not beside this clone")
def test_each_link_is_in_facts_md_and_seen():
    facts = (SHARED / "facts.md").read_text()
    for key, link in FLOW.links.items():
        row = next((line for line in facts.splitlines() if f"| {link.url} |" in line), None)
        assert row is not None, f"{key}: {link.url} is not in facts.md"
        assert "unconfirmed" not in row, f"{key}: {link.url} is unconfirmed"


def test_the_source_page_is_the_one_the_table_was_made_from():
    page = SHARED / "000_08f2bfe5ffda8336.txt"
    if not page.exists():
        pytest.skip("../shared is not beside this clone")
    text = page.read_text()
    for phrase in ("Stay calm", "confiscate any devices", "YOTI", "So you got naked online"):
        assert phrase in text
