"""The tools in another language (issue 18): ivr script --lang, ivr simulate --lang,
and the web simulator's language switch."""
from __future__ import annotations

import json
import re

from click.testing import CliRunner
from conftest import make_app

from ivr.config import REPO_ROOT
from ivr.flowtools.commands import script_command
from ivr.staff.simulator.cli import simulate

PASSWORD = "simulator staff password"


def test_the_polish_script_says_it_is_a_draft_at_the_top():
    result = CliRunner().invoke(script_command, ["--flows", str(REPO_ROOT / "flows.yaml"),
                                                 "--prompts", str(REPO_ROOT / "prompts"),
                                                 "--lang", "pl-PL"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("draft: not yet reviewed by a fluent speaker")
    assert "naciśnij 1 albo powiedz: kroki" in result.output
    # how a caller comes to it: the offer in the English welcome, and when 999 and 7 are heard
    top = result.output.split("Every step of the line")[0]
    assert "How a caller chooses pl-PL: in the en-GB welcome" in top
    assert "1. Jeśli dziecko jest w bezpośrednim niebezpieczeństwie, rozłącz się teraz i " \
           "zadzwoń pod 999.\n2. Po polsku: naciśnij 7." in top
    assert "999 heard by word 15 of the offer (about 0:14), then key 7 by word 19 " \
           "(about 0:15)" in top


def test_the_english_script_shows_the_polish_offer_after_the_first_sentence():
    result = CliRunner().invoke(script_command, ["--flows", str(REPO_ROOT / "flows.yaml"),
                                                 "--prompts", str(REPO_ROOT / "prompts")])
    assert result.exit_code == 0, result.output
    start = result.output.split("### 1. ")[1].split("### 2. ")[0]
    said = [line for line in start.splitlines() if line[:1].isdigit()]
    assert said[0].startswith("1. This is Calm Line.")
    assert said[1].startswith("2. [pl-PL, in the voice Polly.Ola-Neural] Jeśli dziecko jest")
    assert said[2].startswith("3. [pl-PL, in the voice Polly.Ola-Neural] Po polsku: naciśnij 7.")
    assert said[3].startswith("4. This line is for parents")
    assert "key 7 by word 19 (about 0:15)" in start


def test_an_unknown_language_for_the_script_is_a_clear_error():
    result = CliRunner().invoke(script_command, ["--flows", str(REPO_ROOT / "flows.yaml"),
                                                 "--prompts", str(REPO_ROOT / "prompts"),
                                                 "--lang", "xx-XX"])
    assert result.exit_code != 0 and "no prompts/xx-XX.yaml" in result.output


def test_simulate_in_polish(runner):
    result = runner.invoke(simulate, ["--lang", "pl-PL", "--keys", "4", "--json"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    said = " ".join(" ".join(t.get("said") or []) for t in data["turns"])
    assert "Po polsku: naciśnij 7" in said and "Numer to 0 8 0 8" in said


def test_simulate_refuses_a_language_the_line_does_not_offer(runner):
    result = runner.invoke(simulate, ["--lang", "xx-XX"])
    assert result.exit_code != 0 and "not a language the line offers" in result.output


def test_the_web_simulator_starts_a_call_in_polish(tmp_path):
    app = make_app(tmp_path, STAFF_PASSWORD=PASSWORD)
    web = app.test_client()
    page = web.get("/staff/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    web.post("/staff/login", data={"csrf_token": token, "password": PASSWORD})
    page = web.get("/simulator").get_data(as_text=True)
    assert '<option value="pl-PL">' in page  # the switch
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    response = web.post("/simulator/api/calls", json={"from": "mobile", "lang": "pl-PL"},
                        headers={"X-CSRF-Token": csrf})
    assert response.status_code == 201, response.get_json()
    text = json.dumps(response.get_json(), ensure_ascii=False)
    assert "To jest Calm Line" in text
    bad = web.post("/simulator/api/calls", json={"from": "mobile", "lang": "xx-XX"},
                   headers={"X-CSRF-Token": csrf})
    assert bad.status_code == 400
