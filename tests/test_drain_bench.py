"""The outbox drain's benchmark (bench/drain.py) sends more texts than the line's own
limits let calls ask for in an hour, and says so when a limit refuses one."""
import pytest

from bench import drain
from tests.conftest import make_app


@pytest.mark.postgres
def test_the_drain_sends_past_the_hourly_ceiling(postgres_ready, tmp_path):
    # 120 texts: past TEXTS_PER_HOUR's default of 100, which refused the 101st.
    result = drain.run_once(workers=1, count=120, rate=200.0, database_url=postgres_ready,
                            out=tmp_path, log=lambda *_: None)
    assert (result.sent, result.duplicates, result.lost) == (120, 0, 0)


def test_a_text_a_limit_refuses_is_named(tmp_path):
    app = make_app(tmp_path, TEXTS_PER_HOUR=2)
    with app.app_context(), pytest.raises(RuntimeError, match="text 3 of 3 was not held: limited"):
        drain.hold_texts(3)


def test_the_drains_ceiling_is_its_count():
    assert drain.ceilings(500) == {"TEXTS_PER_HOUR": "500"}
    assert drain.ceilings(10) == {"TEXTS_PER_HOUR": "100"}  # never below the line's default
