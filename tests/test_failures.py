"""Whatever breaks, the caller hears 999 and the NSPCC number; a broken setup refuses to start."""
from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import pytest
from conftest import make_app

from ivr import config
from ivr.call import engine
from ivr.config import REPO_ROOT
from ivr.problems import FlowError

NSPCC_SPOKEN = "0 8 0 8, 8 0 0, 5 0 0 0"
PARAMS = {"CallSid": "CA" + "b" * 32, "From": "+447400123456", "To": "+441134960000"}


def spoken(response) -> str:
    root = ET.fromstring(response.data)
    return " ".join("".join(say.itertext()) for say in root.iter("Say"))


def assert_safety(response):
    assert response.status_code == 200
    root = ET.fromstring(response.data)
    assert root.tag == "Response" and root[-1].tag == "Hangup"
    text = spoken(response)
    assert "call 9 9 9" in text and NSPCC_SPOKEN in text


def test_an_exception_in_the_engine_still_gives_the_safety_words(twilio_post, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("boom for +447400123456")

    monkeypatch.setattr(engine, "answer", broken)
    response = twilio_post("/voice/answer/main", {**PARAMS, "Digits": "1"})
    assert_safety(response)
    assert "RuntimeError" in caplog.text and "voice webhook /voice/answer/main failed" in caplog.text
    assert "+447400123456" not in caplog.text and PARAMS["CallSid"] not in caplog.text


def test_the_fallback_url_works_with_the_flow_file_gone(tmp_path):
    shutil.copy(REPO_ROOT / "flows.yaml", tmp_path / "flows.yaml")
    shutil.copytree(REPO_ROOT / "prompts", tmp_path / "prompts")
    app = make_app(tmp_path, upgrade=False, FLOWS_FILE=str(tmp_path / "flows.yaml"),
                   PROMPTS_DIR=str(tmp_path / "prompts"),
                   DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    (tmp_path / "flows.yaml").unlink()
    shutil.rmtree(tmp_path / "prompts")
    from conftest import sign

    response = app.test_client().post("/voice/fallback", data=PARAMS,
                                      headers={"X-Twilio-Signature": sign("/voice/fallback", PARAMS)})
    assert_safety(response)


def test_a_broken_flow_is_refused_at_start_with_file_line_and_reason(tmp_path):
    text = (REPO_ROOT / "flows.yaml").read_text().replace("to: removal\n", "to: removals\n", 1)
    (tmp_path / "flows.yaml").write_text(text)
    line = text[: text.index("to: removals")].count("\n") + 1
    with pytest.raises(FlowError) as caught:
        make_app(tmp_path, FLOWS_FILE=str(tmp_path / "flows.yaml"))
    message = str(caught.value)
    assert f"flows.yaml:{line}:" in message and "E020" in message and "'removals'" in message


def test_yaml_syntax_errors_name_the_line(tmp_path):
    (tmp_path / "flows.yaml").write_text("version: 1\nnodes:\n  main: [\n")
    with pytest.raises(FlowError) as caught:
        make_app(tmp_path, FLOWS_FILE=str(tmp_path / "flows.yaml"))
    assert "flows.yaml:4:1: E001 YAML syntax" in str(caught.value)


@pytest.mark.parametrize(("name", "value"), [
    ("NSPCC_DIAL_NUMBER", "not a number"),
    ("PUBLIC_BASE_URL", "line.example.org"),
    ("TRUSTED_PROXIES", "two"),
    ("SMS_RATE_PER_SECOND", "-1"),
    ("TWILIO_ACCOUNT_SID", "XX123"),
    ("LOG_FORMAT", "xml"),
    ("DEFAULT_REGION", "Narnia"),
])
def test_a_bad_setting_names_the_variable(name, value):
    with pytest.raises(config.SettingError) as caught:
        config.from_env({name: value})
    assert name in str(caught.value) and caught.value.name == name


def test_an_account_without_a_token_or_sender_is_refused():
    with pytest.raises(config.SettingError, match="TWILIO_AUTH_TOKEN"):
        config.check(config.from_env({"TWILIO_ACCOUNT_SID": "AC" + "0" * 32}))
    with pytest.raises(config.SettingError, match="TWILIO_FROM_NUMBER"):
        config.check(config.from_env({"TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
                                      "TWILIO_AUTH_TOKEN": "x"}))


def test_good_settings_are_read_and_normalised():
    settings = config.from_env({"NSPCC_DIAL_NUMBER": "0808 800 5000",
                                "PUBLIC_BASE_URL": "https://line.example.org/",
                                "TRUSTED_PROXIES": "1"})
    assert settings["NSPCC_DIAL_NUMBER"] == "+448088005000"
    assert settings["PUBLIC_BASE_URL"] == "https://line.example.org"
    assert settings["TRUSTED_PROXIES"] == 1
