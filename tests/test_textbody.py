"""The follow-up text: its words, its layout, and what it costs in segments."""
from __future__ import annotations

import dataclasses
import itertools
import math
from types import MappingProxyType

import fake_twilio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr import config
from ivr.call import flow as flow_module
from ivr.flowtools import validate
from ivr.texts import body as textbody


@pytest.fixture(scope="module")
def flow():
    loaded, _warnings = validate.load(config.REPO_ROOT / "flows.yaml",
                                         config.REPO_ROOT / "prompts")
    return loaded


def branches_with_links(flow) -> list[str]:
    return [node_id for node_id, node in flow.nodes.items() if node.links]


def shown(url: str) -> str:
    """The part of a URL every layout keeps."""
    return url.removeprefix("https://").removeprefix("www.").rstrip("/")


_bare = shown


def _fixed(flow) -> str:
    """The lines every text has, lower-cased."""
    return " ".join(flow.written(flow.sms[k]) for k in ("intro", "nspcc", "danger", "stop")).lower()


# -- what the text says --


def test_with_no_branches_it_still_gives_the_nspcc_999_and_stop(flow):
    body = textbody.compose(flow, [])
    assert body.splitlines() == [
        flow.written(flow.sms["intro"]),
        flow.written(flow.sms["nspcc"]),
        flow.written(flow.sms["danger"]),
        flow.written(flow.sms["stop"]),
    ]
    assert flow.numbers["nspcc"] in body
    assert "999" in body
    assert "STOP" in body
    assert "{" not in body  # every placeholder filled


def test_links_of_the_branches_heard_come_as_label_then_the_address_on_its_own_line(flow):
    branch = next(b for b in branches_with_links(flow)
                  if any(_bare(flow.links[k].url) not in _fixed(flow) for k in flow.nodes[b].links))
    body = textbody.compose(flow, [branch])
    lines = body.splitlines()
    for key in flow.nodes[branch].links:
        link = flow.links[key]
        if _bare(link.url) not in _fixed(flow):
            assert lines[lines.index(link.url) - 1] == f"{link.label}:"
    others = {k for b in branches_with_links(flow) for k in flow.nodes[b].links}
    others -= set(flow.nodes[branch].links)
    for key in others:
        assert flow.links[key].url not in body  # links of branches not heard


def test_links_follow_the_flow_order_whatever_order_they_are_given_in(flow):
    branches = branches_with_links(flow)
    forwards = textbody.compose(flow, branches)
    assert forwards == textbody.compose(flow, list(reversed(branches)))
    synthetic = _with_links(flow, {"first": "https://first.example.org"}, node="urgent")
    synthetic = _with_links(synthetic, {"second": "https://second.example.org"}, node="talk")
    order = list(synthetic.nodes)
    assert order.index("urgent") < order.index("talk")
    body = textbody.compose(synthetic, ["talk", "urgent"])
    assert body.index("first.example.org") < body.index("second.example.org")


def test_a_link_heard_in_two_branches_is_written_once(flow):
    shared = {"both": "https://both.example.org"}
    synthetic = _with_links(_with_links(flow, shared, node="urgent"), shared, node="talk")
    body = textbody.compose(synthetic, ["urgent", "talk"])
    assert body.count("both.example.org") == 1


def test_a_link_the_fixed_lines_already_give_is_not_repeated(flow):
    assert "nspcc" in flow.nodes["talk"].links
    body = textbody.compose(flow, ["talk"])
    assert "https://" not in body  # talk's only link is the NSPCC's, already in its line
    assert body.count("nspcc.org.uk") == 1


def test_unknown_branches_and_nodes_without_links_are_ignored(flow):
    assert textbody.compose(flow, ["no-such-node", "school", "main"]) == textbody.compose(flow, [])


def numbers_said(flow, heard) -> set[str]:
    """The numbers (as written) said in the steps heard, found from the words themselves."""
    said = {flow.numbers["nspcc"], flow.numbers["emergency"]}
    for node_id in heard:
        for key in flow.nodes[node_id].say:
            said |= {number for name, number in flow.numbers.items()
                     if "{" + name + "}" in flow.prompts[key]}
    return said


def test_every_combination_of_branches_explains_itself_within_two_texts(flow):
    branches = branches_with_links(flow)
    assert len(branches) >= 5
    combinations = split = 0
    for size in range(len(branches) + 1):
        for heard in itertools.combinations(branches, size):
            parts = textbody.compose_parts(flow, list(heard))
            assert 1 <= len(parts) <= 2, heard
            split += len(parts) == 2
            for part in parts:
                assert textbody.is_gsm7(part), heard
                assert textbody.segments(part) <= textbody.MAX_SEGMENTS, (heard, len(part))
            lines = "\n".join(parts).splitlines()
            for node_id in heard:
                for key in flow.nodes[node_id].links:
                    link = flow.links[key]
                    if link.url in lines:  # a link the fixed lines give is not repeated
                        assert lines[lines.index(link.url) - 1] == f"{link.label}:"
                    else:
                        assert shown(link.url) in _fixed(flow), (heard, key)
            for number in numbers_said(flow, heard):
                assert number in "\n".join(parts), (heard, number)
            assert "STOP" in parts[-1] and "999" in parts[-1]
            combinations += 1
    assert combinations == 2 ** len(branches)
    assert split, "no combination is long enough to need two texts: the split is untested"


def test_childline_and_101_are_in_the_text_only_when_heard(flow):
    assert flow.numbers["childline"] not in textbody.compose(flow, [])
    assert flow.numbers["childline"] in textbody.compose(flow, ["talk"])
    assert flow.numbers["police"] not in textbody.compose(flow, ["talk"])
    assert flow.numbers["police"] in textbody.compose(flow, ["urgent"])


# -- layout when the links are long --


def _with_links(flow, urls: dict[str, str], node: str = "removal"):
    """The flow with ``node`` giving just these links (labels "Label <key>")."""
    links = dict(flow.links)
    links.update({key: flow_module.Link(key, f"Label {key}", url) for key, url in urls.items()})
    nodes = dict(flow.nodes)
    nodes[node] = dataclasses.replace(nodes[node], links=tuple(urls))
    return dataclasses.replace(flow, links=MappingProxyType(links), nodes=MappingProxyType(nodes))


def test_a_text_too_long_for_the_limit_goes_as_two_in_order_each_within_it(flow):
    urls = {f"k{i}": f"https://example.org/{'x' * 40}/{i}" for i in range(5)}
    long = _with_links(flow, urls)
    parts = textbody.compose_parts(long, ["removal"])
    assert len(parts) == 2
    assert all(textbody.segments(part) <= 3 for part in parts)
    assert parts[0].splitlines()[0].endswith("(1/2)") and parts[1].splitlines()[0].endswith("(2/2)")
    joined = "\n".join(parts)
    assert [joined.index(url) for url in urls.values()] == sorted(
        joined.index(url) for url in urls.values())  # the flow's order, across the two
    for key, url in urls.items():
        assert f"Label {key}:\n{url}" in joined  # nothing shortened
    one = textbody.compose_parts(long, ["removal"], limit=10)
    assert len(one) == 1 and "(1/" not in one[0]


def test_the_limit_is_the_setting_the_flow_carries(flow):
    settings = MappingProxyType(dict(flow.settings, TEXT_MAX_SEGMENTS=1))
    small = dataclasses.replace(flow, settings=settings)
    parts = textbody.compose_parts(small, ["talk"])
    assert len(parts) == 2 and all(textbody.segments(p) == 1 for p in parts)


def test_typographic_quotes_and_dashes_become_plain(flow):
    sms = dict(flow.sms, intro="Calm Line \u2013 \u201cyour\u201d links\u2026 it\u2019s here")
    body = textbody.compose(dataclasses.replace(flow, sms=MappingProxyType(sms)), [])
    assert body.startswith("Calm Line - \"your\" links... it's here")
    assert textbody.is_gsm7(body)


# -- GSM-7 and segments -----------------------------------------------------------


def test_is_gsm7():
    assert textbody.is_gsm7("Hello @ £5, é! {x} [y] ~ €")
    assert not textbody.is_gsm7("curly \u2019 quote")
    assert not textbody.is_gsm7("emoji \U0001F600")
    assert not textbody.is_gsm7("\u0142")  # Polish l with stroke


@pytest.mark.parametrize(("text", "expected"), [
    ("", 1),
    ("a" * 160, 1),
    ("a" * 161, 2),
    ("a" * 306, 2),
    ("a" * 307, 3),
    ("a" * 459, 3),
    ("a" * 460, 4),
    ("\u20ac" * 80, 1),  # 160 septets: each euro sign is an escape pair
    ("\u20ac" * 81, 2),
    ("a" * 152 + "\u20ac" + "a" * 10, 2),  # the pair is not cut: it starts segment two
    ("\u0142" * 70, 1),
    ("\u0142" * 71, 2),
    ("\u0142" * 134, 2),
    ("\u0142" * 135, 3),
    ("\U0001F600" * 35, 1),  # 70 UTF-16 units
    ("\U0001F600" * 36, 2),
])
def test_segments_at_the_boundaries(text, expected):
    assert textbody.segments(text) == expected


_GSM_BASIC = "".join(sorted(textbody.GSM7_BASIC))


@given(st.text(alphabet=_GSM_BASIC, max_size=1000))
def test_gsm7_basic_text_costs_160_then_153_a_segment(text):
    n = len(text)
    assert textbody.segments(text) == (1 if n <= 160 else math.ceil(n / 153))


@given(st.text(alphabet="\u0142\u0436\u4e2d", min_size=1, max_size=500))
def test_ucs2_text_costs_70_then_67_a_segment(text):
    n = len(text)
    assert textbody.segments(text) == (1 if n <= 70 else math.ceil(n / 67))


def test_the_fake_twilio_bills_with_the_same_count():
    assert fake_twilio.count_segments is textbody.segments
