"""The tests' fake of Twilio's REST API (tests/fake_twilio.py), for the benchmarks."""
from __future__ import annotations

import sys

from bench.common import ROOT


def FakeTwilio(**kwargs):  # noqa: N802 (a class, imported late)
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from fake_twilio import FakeTwilio as Fake

    return Fake(**kwargs)


def twilio_env(fake, rate: float, public_base: str) -> dict:
    """Settings that point the line and `ivr worker` at the fake."""
    return {
        "TWILIO_ACCOUNT_SID": fake.account_sid,
        "TWILIO_API_BASE_URL": fake.base_url,
        "TWILIO_FROM_NUMBER": "+441134960000",
        "PUBLIC_BASE_URL": public_base,
        "SMS_RATE_PER_SECOND": str(rate),
    }


def creates(fake) -> list:
    """The fake's requests that tried to create a message."""
    return [r for r in list(fake.requests) if r.method == "POST" and r.path.endswith("/Messages.json")]
