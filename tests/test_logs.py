"""Nothing personal in logs."""
from __future__ import annotations

import logging

from ivr import logs


def test_numbers_are_masked_keeping_the_ends():
    assert logs.mask_number("+447400123456") == "+44*******456"
    assert logs.mask_text("from +44 7400 123456 and 07400123457") == (
        "from +44*******456 and 074*****457")
    assert logs.mask_number(None) == "-"


def test_every_logger_is_masked_even_in_tracebacks(caplog):
    logs.configure()
    logger = logging.getLogger("some.library")
    with caplog.at_level(logging.DEBUG):
        logger.info("sending to %s", "+447400123456")
        try:
            raise ValueError("bad number 07400123456")
        except ValueError:
            logger.exception("failed")
    assert "+447400123456" not in caplog.text and "07400123456" not in caplog.text
    assert "+44*******456" in caplog.text


def test_call_sids_are_hashed_not_shown():
    tag = logs.hash_call_sid("CA" + "c" * 32)
    assert len(tag) == 12 and "CA" not in tag and tag == logs.hash_call_sid("CA" + "c" * 32)


def test_dates_and_error_codes_stay_readable():
    line = "2026-11-26 13:56:03.797976 Twilio answered 400 (21211) for +447400123456"
    assert logs.mask_text(line) == "2026-11-26 13:56:03.797976 Twilio answered 400 (21211) for +44*******456"


def test_the_call_tag_command_finds_a_call_in_the_logs(runner):
    call_sid = "CA" + "d" * 32
    from ivr.cli import call_tag

    result = runner.invoke(call_tag, [call_sid])
    assert result.exit_code == 0
    assert result.output.split() == [call_sid, logs.hash_call_sid(call_sid)]
