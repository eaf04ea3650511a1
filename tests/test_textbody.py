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


def test_links_of_the_branches_heard_come_as_label_and_url(flow):
    branch = next(b for b in branches_with_links(flow)
                  if any(_bare(flow.links[k].url) not in _fixed(flow) for k in flow.nodes[b].links))
    body = textbody.compose(flow, [branch])
    lines = body.splitlines()
    for key in flow.nodes[branch].links:
        link = flow.links[key]
        if _bare(link.url) not in _fixed(flow):
            assert f"{link.label}: {link.url}" in lines
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
    assert body == textbody.compose(flow, [])
    assert body.count("nspcc.org.uk") == 1


def test_unknown_branches_and_nodes_without_links_are_ignored(flow):
    assert textbody.compose(flow, ["no-such-node", "school", "main"]) == textbody.compose(flow, [])


def test_every_combination_of_branches_is_plain_gsm7_in_at_most_three_segments(flow):
    branches = branches_with_links(flow)
    assert len(branches) >= 5
    combinations = 0
    for size in range(len(branches) + 1):
        for heard in itertools.combinations(branches, size):
            body = textbody.compose(flow, list(heard))
            assert textbody.is_gsm7(body), heard
            assert textbody.segments(body) <= textbody.MAX_SEGMENTS, (heard, len(body))
            for node_id in heard:
                for key in flow.nodes[node_id].links:
                    assert shown(flow.links[key].url) in body, (heard, key)
            assert flow.numbers["nspcc"] in body and "STOP" in body
            combinations += 1
    assert combinations == 2 ** len(branches)


# -- layout when the links are long --


def _with_links(flow, urls: dict[str, str], node: str = "removal"):
    """The flow with ``node`` giving just these links (labels "Label <key>")."""
    links = dict(flow.links)
    links.update({key: flow_module.Link(key, f"Label {key}", url) for key, url in urls.items()})
    nodes = dict(flow.nodes)
    nodes[node] = dataclasses.replace(nodes[node], links=tuple(urls))
    return dataclasses.replace(flow, links=MappingProxyType(links), nodes=MappingProxyType(nodes))


def test_a_text_that_would_be_too_long_drops_https_and_then_labels(flow):
    short = _with_links(flow, {"a": "https://a.example.org"})
    assert "Label a: https://a.example.org" in textbody.compose(short, ["removal"])

    # Long enough that labels fit only without https:// ...
    medium = _with_links(flow, {f"k{i}": f"https://example.org/{'x' * 40}/{i}" for i in range(5)})
    body = textbody.compose(medium, ["removal"])
    assert "https://" not in body and "Label k0: example.org/" in body
    assert textbody.segments(body) <= 3

    # ... and longer still: only the addresses.
    long = _with_links(flow, {f"k{i}": f"https://example.org/{'y' * 50}/{i}" for i in range(5)})
    body = textbody.compose(long, ["removal"])
    assert "Label" not in body and "example.org/" + "y" * 50 + "/4" in body


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
