"""The events recorder (ivr/call/recorder.py): a worker sends its noted webhooks to one
process that writes them; when it cannot, the worker writes them itself, as before.

Both sides run here for real: the worker is the test's app, driven with signed posts; the
recorder is a second app on the same SQLite file, listening on a Unix socket in a thread.
"""
from __future__ import annotations

import logging
import marshal
import os
import shutil
import socket
import tempfile
import threading

import pytest
import sqlalchemy as sa
from conftest import make_app, sign, wait_for

from ivr import store
from ivr.call import events, recorder


@pytest.fixture
def socket_path():
    folder = tempfile.mkdtemp(prefix="cl-rec-")  # short: a socket's path fits in 107 bytes
    yield os.path.join(folder, "s")
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def running(tmp_path, socket_path):
    """A recorder serving in a thread, writing with an app of its own (same database)."""
    listening = recorder.Recorder(socket_path)
    own = make_app(tmp_path, upgrade=False)
    stop = threading.Event()
    thread = threading.Thread(target=recorder.serve, args=(listening.attach(own), stop))
    thread.start()
    yield listening
    stop.set()
    thread.join(60)
    assert not thread.is_alive()


def _worker(app, path: str) -> recorder.Shipper:
    shipper = recorder.Shipper(path)
    events.writer(app).shipper = shipper
    return shipper


def _a_call(app, sid: str = "CA" + "1" * 32) -> None:
    client = app.test_client()
    for path, data in (("/voice", {}), ("/voice/answer/main", {"Digits": "1"})):
        data = {"CallSid": sid, "From": "+447400123456", "To": "+441134960000", **data}
        assert client.post(path, data=data, headers={"X-Twilio-Signature": sign(path, data)}
                           ).status_code == 200


def _kinds(app) -> list[str]:
    with app.app_context(), store.read() as conn:
        return [row.kind for row in conn.execute(
            sa.select(events.events.c.kind).order_by(events.events.c.id))]


def test_a_worker_s_events_are_written_by_the_recorder_not_by_the_worker(app, running,
                                                                           socket_path):
    shipper = _worker(app, socket_path)
    _a_call(app)
    app.extensions["calm_line.metrics"].fold()  # what the fold's timer does within 0.25 s
    kinds = wait_for(lambda: _kinds(app), "the recorder's rows")
    assert kinds[0] == "call_started" and "choice" in kinds
    wait_for(lambda: running.received == 2, "both webhooks at the recorder")
    assert shipper.sent == 2
    writer = events.writer(app)
    assert writer.written == 0 and writer.queue.unfinished_tasks == 0  # nothing written here


def test_without_the_recorder_a_worker_writes_its_own_events(app, socket_path, caplog):
    shipper = _worker(app, socket_path)  # nothing listens there
    caplog.set_level(logging.WARNING, logger="ivr.call.recorder")
    _a_call(app)
    app.extensions["calm_line.metrics"].fold()
    assert events.flush(app)
    assert _kinds(app)[0] == "call_started" and events.writer(app).written > 0
    assert shipper.sent == 0
    assert "this worker writes its own events" in caplog.text
    # And it does not knock again at once: the next batch is written here without a try.
    caplog.clear()
    _a_call(app, "CA" + "2" * 32)
    app.extensions["calm_line.metrics"].fold()
    assert events.flush(app) and _kinds(app).count("call_started") == 2
    assert "recorder" not in caplog.text


def _connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(path)
    return sock


def _seen(sid: str) -> tuple:
    return tuple(events.Seen(1_800_000_000.0, "voice.incoming", None, None, None, None, None,
                             "main", sid, False))


def test_a_frame_that_is_not_a_batch_is_refused_and_the_recorder_goes_on(app, running,
                                                                         socket_path, caplog):
    caplog.set_level(logging.WARNING, logger="ivr.call.recorder")
    with _connect(socket_path) as sock:
        sock.send(b"\x00not marshal")
        sock.send(marshal.dumps([("too", "few", "fields")]))
        sock.send(marshal.dumps([_seen("CA" + "3" * 32)]))
    wait_for(lambda: _kinds(app) == ["call_started", "step"], "the good frame's rows")
    assert caplog.text.count("could not read a frame") == 2


def test_a_recorder_that_does_not_read_costs_the_worker_no_wait(app, socket_path, caplog):
    """Nothing reads the socket: once its queue is full a frame is handed back at once (the
    fold may be running on a webhook's thread) and the worker writes those rows itself."""
    caplog.set_level(logging.WARNING, logger="ivr.call.recorder")
    deaf = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    deaf.bind(socket_path)
    deaf.listen()
    shipper = _worker(app, socket_path)
    batch = [events.Seen(*_seen(f"CA{index:032x}")) for index in range(recorder.FRAME_ITEMS)]
    handed_back: list = []
    for _ in range(10_000):  # far more than any socket buffer holds
        handed_back = shipper.send(batch)
        if handed_back:
            break
    deaf.close()
    assert handed_back == batch and shipper.sent > 0
    assert "did not take a batch (BlockingIOError)" in caplog.text
    assert shipper.send(batch) == batch  # and it waits a while before trying again
    events.writer(app).put(handed_back)  # as the writer does with what comes back
    assert events.flush(app) and _kinds(app).count("call_started") == recorder.FRAME_ITEMS


def test_at_the_end_the_recorder_waits_for_the_workers_last_frames(tmp_path, app, socket_path):
    listening = recorder.Recorder(socket_path)
    stop = threading.Event()
    thread = threading.Thread(target=recorder.serve,
                              args=(listening.attach(make_app(tmp_path, upgrade=False)), stop))
    thread.start()
    sock = _connect(socket_path)
    wait_for(lambda: listening._open, "the connection taken")
    stop.set()  # gunicorn stops: the recorder stops listening, the worker is still finishing
    wait_for(lambda: not os.path.exists(socket_path) or _refused(socket_path), "no new connection")
    sock.send(marshal.dumps([_seen("CA" + "5" * 32)]))  # the worker's last fold
    sock.close()
    thread.join(60)
    assert not thread.is_alive()
    assert _kinds(app) == ["call_started", "step"]  # written before the recorder ended
    assert not os.path.exists(socket_path)


def _refused(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as probe:
        try:
            probe.connect(path)
        except OSError:
            return True
    return False


def test_the_recorder_is_started_for_the_line_only(monkeypatch, tmp_path):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.delenv(recorder.SOCKET_ENV, raising=False)
    assert recorder.start("bench.references:sample_app()") is None
    assert recorder.SOCKET_ENV not in os.environ
    assert not list(tmp_path.iterdir())


def test_without_a_recorder_gunicorn_starts_all_the_same(monkeypatch, tmp_path, caplog):
    """A recorder that cannot start (here: no process can be made) costs nothing but a
    warning: the workers are given no socket and write their own events."""
    import subprocess

    def refused(*args, **kwargs):
        raise OSError("no more processes")

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.delenv(recorder.SOCKET_ENV, raising=False)
    monkeypatch.setattr(subprocess, "Popen", refused)
    caplog.set_level(logging.WARNING, logger="ivr.call.recorder")
    assert recorder.start("ivr:create_app()") is None
    assert recorder.SOCKET_ENV not in os.environ
    assert not list(tmp_path.iterdir())  # its folder removed
    assert "no recorder (no more processes)" in caplog.text
