"""`ivr simulate`, scripted and by hand, in-process and against a running server."""
from __future__ import annotations

import json
import re
import threading

import pytest
from conftest import make_app
from werkzeug.serving import make_server

from ivr.cli import main
from ivr.staff.simulator import cli as simulate_cli
from ivr.staff.simulator.call import ScriptError, parse_action
from ivr.staff.simulator.cli import read_action, script_from, simulate
from ivr.texts import body as textbody

NINE_NINE_NINE = re.compile(r"\b9\W{0,3}9\W{0,3}9\b")


def run(runner, *args, **kwargs):
    return runner.invoke(simulate, list(args), catch_exceptions=False, **kwargs)


def as_json(runner, *args):
    result = run(runner, *args, "--json")
    return result, json.loads(result.output)


def turn_after(data, action, value):
    """The line's answer to the caller's first `action` with `value`."""
    return next(t for t in data["turns"] if t["action"] == action and t["value"] == value)


# -- the urgent key ----------------------------------------------------------------------


def test_key_9_from_the_main_menu_says_999(runner):
    result = run(runner, "--keys", "9")
    assert result.exit_code == 0, result.output
    after = result.output.split("> Pressed 9", 1)[1]
    assert after.splitlines()[1] == "  [urgent]"
    assert NINE_NINE_NINE.search(after.splitlines()[2])
    assert "Call ended: The caller hung up." in result.output


@pytest.mark.parametrize("keys, menu", [
    ("2,9", "removal"),
    ("1,1,1,9", "steps_more"),
    ("3,9", "school"),
    ("4,9", "talk"),
    ("#,9", "finish"),
])
def test_key_9_from_a_sub_menu_says_999(runner, keys, menu):
    result, data = as_json(runner, "--keys", keys)
    assert result.exit_code == 0
    *before, last = data["turns"][1:-1]  # without the dial and the hang-up
    assert before[-1]["steps"][-1] == menu
    assert last["action"] == "key" and last["value"] == "9"
    assert last["steps"] == ["urgent"]
    assert NINE_NINE_NINE.search(last["said"][0])


def test_saying_danger_says_999_too(runner):
    result, data = as_json(runner, "--keys", "2", "--say", "my child is in danger")
    assert turn_after(data, "say", "my child is in danger")["steps"] == ["urgent"]


# -- JSON -----------------------------------------------------------------------------------


def test_json_holds_the_whole_call(runner):
    result, data = as_json(runner, "--keys", "1,*,0,9")
    assert result.exit_code == 0
    assert set(data) >= {"steps", "turns", "ended", "text", "ok"}
    assert data["ok"] is True
    assert [t["action"] for t in data["turns"]] == ["dial", "key", "key", "key", "key", "hang_up"]
    assert data["steps"][:2] == ["welcome", "main"]
    assert data["steps"][2:] == ["steps", "steps", "main", "urgent"]
    assert data["turns"][0]["said"][0].startswith("This is Calm Line")
    assert all(t["status"] == 200 for t in data["turns"][:-1])
    assert data["turns"][1]["waiting"] == "menu"
    assert data["ended"] == {"how": "hung up", "node": "urgent",
                             "message": "The caller hung up."}
    assert data["text"] is None
    assert data["from"] == {"kind": "mobile", "number": "+447400123456"}


def test_the_removal_branch_by_keys_ends_with_the_text(runner):
    result, data = as_json(runner, "--keys", "2,#,1")
    assert result.exit_code == 0
    assert data["ended"]["how"] == "goodbye"
    assert data["ended"]["node"] == "text_queued"
    text = data["text"]
    assert text["sent"] is False and text["shown"] is True and text["simulated"] is True
    assert "report-remove" in text["body"]
    assert text["segments"] == textbody.segments(text["body"])
    assert text["characters"] == len(text["body"])
    assert text["to"] == "+44*******456"


def test_the_text_is_shown_with_its_segment_count(runner):
    result = run(runner, "--keys", "2,#,1")
    assert result.exit_code == 0
    found = re.search(r"Text to \+44\*+456: (\d) segments?, (\d+) characters", result.output)
    assert found
    body = "\n".join(line[4:] for line in result.output.splitlines() if line.startswith("  | "))
    assert int(found.group(1)) == textbody.segments(body)
    assert "Report Remove" in body


def test_speech_and_keys_run_in_the_order_given(runner):
    result, data = as_json(runner, "--say", "remove the picture", "--keys", "#",
                           "--do", "say:yes please")
    assert result.exit_code == 0
    assert [(t["action"], t["value"]) for t in data["turns"]] == [
        ("dial", ""), ("say", "remove the picture"), ("key", "#"), ("say", "yes please")]
    assert data["turns"][1]["steps"] == ["removal"]
    assert data["ended"]["node"] == "text_queued" and data["text"]["shown"]


def test_saying_no_to_the_text_sends_none(runner):
    result, data = as_json(runner, "--keys", "3,#", "--say", "no thanks")
    assert data["ended"] == {"how": "goodbye", "node": "goodbye",
                             "message": "The line said goodbye and hung up."}
    assert data["text"] is None


def test_a_withheld_caller_keys_in_a_number_without_the_hash(runner):
    result, data = as_json(runner, "--from", "withheld", "--keys", "2,#,1,07400123456#,1")
    assert result.exit_code == 0, result.output
    keyed = turn_after(data, "key", "07400123456")  # Twilio does not send the finishing #
    assert keyed["steps"] == ["number_confirm"]
    assert "0 7 4 0 0" in " ".join(keyed["said"])
    assert data["ended"]["node"] == "text_queued"
    assert data["text"]["shown"] and data["text"]["to"] == "+44*******456"
    assert data["from"] == {"kind": "withheld", "number": "anonymous"}


def test_a_landline_is_asked_for_a_mobile(runner):
    result, data = as_json(runner, "--from", "landline", "--keys", "#,1")
    assert data["turns"][-2]["steps"] == ["number_why", "number_entry"]  # why, then the ask
    assert data["turns"][-2]["waiting"] == "digits"


def test_silence_and_too_many_tries(runner):
    result, data = as_json(runner, "--keys", "-,-,-", "--do", "silence", "--do", "silence",
                           "--do", "wait")
    assert result.exit_code == 0
    turns = data["turns"]
    assert [t["action"] for t in turns[1:]] == ["silence"] * 6
    assert turns[3]["steps"][0] == "trouble" and turns[3]["gave_up"]
    assert turns[3]["steps"][-1] == "finish"
    assert data["ended"]["how"] == "too many tries"
    assert data["ended"]["node"] == "goodbye_trouble"


# -- exit codes -----------------------------------------------------------------------------


def test_keys_after_the_line_hung_up_do_not_fit_the_script(runner):
    result, data = as_json(runner, "--keys", "#,2,1")
    assert result.exit_code == 2
    assert data["turns"][-1]["refused"] == "the line had already hung up"
    assert data["ended"]["how"] == "goodbye"


def test_words_where_the_line_wants_keys_do_not_fit_the_script(runner):
    result = run(runner, "--from", "withheld", "--keys", "#,1", "--say", "oh seven four")
    assert result.exit_code == 2
    assert "Not sent: this step listens for keys only." in result.output


def test_invalid_twiml_fails_the_run(app, monkeypatch):
    class Broken:
        def render(self, step, entered=None):
            return '<?xml version="1.0"?><Response><Play>hello.mp3</Play></Response>'

    app.extensions["calm_line.renderer"] = Broken()
    result = app.test_cli_runner().invoke(simulate, ["--keys", "1", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["ok"] is False
    assert "<Play> is not allowed" in data["turns"][0]["error"]
    assert data["ended"]["how"] == "error"


def test_a_wrong_signature_fails_the_run(tmp_path):
    app = make_app(tmp_path)
    with serving(app) as base:
        other = make_app(tmp_path / "other", TWILIO_AUTH_TOKEN="not-the-token")
        result = other.test_cli_runner().invoke(simulate, ["--url", base, "--keys", "9"])
    assert result.exit_code == 1
    assert "answered HTTP 403" in result.output


@pytest.mark.parametrize("args", [["--keys", "12a"], ["--do", "press:x"], ["--do", "dance"],
                                  ["--from", "payphone"]])
def test_bad_scripts_are_usage_errors(runner, args):
    result = runner.invoke(simulate, args)
    assert result.exit_code == 2
    assert "Error" in result.output


# -- by hand ----------------------------------------------------------------------------------


def test_interactive_keys_words_silence_and_quit(runner):
    result = run(runner, input="2\nwhat now\n\nq\n")
    out = result.output
    assert result.exit_code == 0
    assert "Type a key (0-9, * or #)" in out
    assert "> Pressed 2" in out and "[removal]" in out
    assert '> Said "what now"' in out
    assert "> Said nothing" in out
    assert "Call ended: The caller hung up." in out


def test_interactive_end_of_input_hangs_up(runner):
    result = run(runner, input="9\n")
    assert result.exit_code == 0
    assert "[urgent]" in result.output
    assert "Call ended: The caller hung up." in result.output


def test_interactive_through_to_the_text(runner):
    result = run(runner, input="2\nfinish\nyes\n")
    assert result.exit_code == 0
    assert "Call ended: The line said goodbye and hung up." in result.output
    assert "Report Remove" in result.output


def test_interactive_number_waits_for_hash_as_the_web_page_does(runner):
    result = run(runner, "--from", "withheld", input="#\n1\n07400123456\n#\n1\n")
    out = result.output
    assert result.exit_code == 0, out
    before_hash, after_hash = out.split("Keyed so far: 07400123456 (press # to finish", 1)
    assert "> Keyed in" not in before_hash  # Enter after the digits sent nothing
    assert "> Keyed in 07400123456" in after_hash and "[number_confirm]" in after_hash
    assert "Call ended: The line said goodbye and hung up." in out


def test_interactive_number_with_its_hash_on_one_line(runner):
    result = run(runner, "--from", "withheld", input="#\n1\n07400123456#\n1\n")
    assert "Keyed so far" not in result.output
    assert "> Keyed in 07400123456" in result.output and "[text_queued]" in result.output


# -- against a running server ---------------------------------------------------------------


class serving:
    """The app on 127.0.0.1, in a thread, for --url."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_port}"

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(5)


def test_url_drives_a_running_server(app):
    with serving(app) as base:
        result = app.test_cli_runner().invoke(
            simulate, ["--url", base, "--keys", "2,#,1", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ended"]["node"] == "text_queued"
    assert data["turns"][1]["url"] == "/voice/answer/main"
    # This process shares the server's database, so it can show the text.
    assert data["text"]["shown"] and "report-remove" in data["text"]["body"]


def test_in_process_calls_sign_for_the_public_address(tmp_path):
    # Behind a proxy the signature check rebuilds PUBLIC_BASE_URL + path: so must we.
    app = make_app(tmp_path, PUBLIC_BASE_URL="https://line.example.org")
    result = app.test_cli_runner().invoke(simulate, ["--keys", "9"])
    assert result.exit_code == 0, result.output
    assert "[urgent]" in result.output


# -- reading aloud ------------------------------------------------------------------------------


def test_speak_uses_espeak_ng_where_installed(runner, monkeypatch):
    spoken = []
    monkeypatch.setattr(simulate_cli.shutil, "which", lambda name: "/usr/bin/espeak-ng")
    monkeypatch.setattr(simulate_cli.subprocess, "run",
                        lambda args, **kwargs: spoken.append(args))
    result = run(runner, "--keys", "9", "--speak")
    assert result.exit_code == 0
    assert spoken and spoken[0][:3] == ["/usr/bin/espeak-ng", "-v", "en-gb"]
    assert any(NINE_NINE_NINE.search(args[-1]) for args in spoken)


def test_speak_without_espeak_ng_shows_the_words_only(runner, monkeypatch):
    monkeypatch.setattr(simulate_cli.shutil, "which", lambda name: None)
    result = runner.invoke(simulate, ["--keys", "9", "--speak"])
    assert result.exit_code == 0
    assert "espeak-ng is not installed" in result.output
    assert "[urgent]" in result.output


# -- never a real text ---------------------------------------------------------------------------


def test_a_simulated_call_never_sends_through_twilio(tmp_path):
    app = make_app(tmp_path, TWILIO_ACCOUNT_SID="AC" + "1" * 32,
                   TWILIO_FROM_NUMBER="+441134960001",
                   TWILIO_API_BASE_URL="http://127.0.0.1:9")  # nothing listens there
    result = app.test_cli_runner().invoke(simulate, ["--keys", "2,#,1", "--json"])
    data = json.loads(result.output)
    assert result.exit_code == 0
    assert data["text"]["shown"] and data["text"]["simulated"]


# -- pieces -------------------------------------------------------------------------------------


def test_the_command_is_part_of_ivr(app):
    result = app.test_cli_runner().invoke(main, ["simulate", "--help"])
    assert result.exit_code == 0
    for option in ("--keys", "--say", "--do", "--from", "--json", "--url", "--speak"):
        assert option in result.output


def test_script_items():
    assert script_from([("keys", "1, *,,-,07400123456#"), ("say", "remove"),
                        ("do", "say:yes, please"), ("do", "hangup")]) == [
        ("key", "1"), ("key", "*"), ("silence", ""), ("silence", ""),
        ("key", "07400123456#"), ("say", "remove"), ("say", "yes, please"), ("hang_up", "")]
    assert parse_action("keys:9") == ("key", "9")
    with pytest.raises(ScriptError):
        parse_action("say")  # say what?  (empty words are a silence only with the colon)


def test_what_staff_type():
    assert read_action("") == ("silence", "")
    assert read_action(" 9 ") == ("key", "9")
    assert read_action("0740 0123456#") == ("key", "07400123456#")
    assert read_action("q") == ("hang_up", "")
    assert read_action("remove the picture") == ("say", "remove the picture")

