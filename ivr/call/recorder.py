"""One process beside gunicorn's web workers that writes every worker's anonymous events.

Working out a webhook's event rows and inserting them is background work, but in a web
worker it shares the worker's one GIL with the webhooks, and its CPU and SQLite's lock with
them. Measured under the Procfile's web line, the recorded mix without any events was about
a fifth faster at p99 than with them written in the workers. So under gunicorn the workers
only copy each webhook's fields (events.Seen, at the metrics' fold, as before) and send
them here, a frame a fold; this process turns them into rows and writes them, with the
same code (events.Writer) the workers used. Alone it gave the mix about 5% at p99 and 2%
in requests a second (BENCHMARKS.md, eighth round).

    worker (the metrics' fold)  --Unix socket, a frame a fold-->  recorder  -->  events

gunicorn.conf.py starts it (`when_ready`: once, in the master, before the first worker is
forked) only for the line's own app, tells the workers where it listens
(CALM_LINE_EVENTS_SOCKET, in a folder of the master's own, mode 0700, so only the same
user can send), and stops it when gunicorn exits, after the workers' last frames. A
worker that cannot reach the recorder (not started, gone, too slow) writes that batch
itself, as it always did, and tries the recorder again a few seconds later; a recorder
killed outright loses what it held, as a worker killed outright always did. A run
without gunicorn (`ivr serve`, the tests' apps) never has a socket set and writes
in-process.

A frame is one SOCK_SEQPACKET message: `marshal` of up to FRAME_ITEMS webhooks' tuples,
the fastest way CPython has to copy plain values between its processes. marshal must never
read data from someone else; the socket's folder lets no other user connect.
"""
from __future__ import annotations

import contextlib
import logging
import marshal
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import click
from flask.cli import ScriptInfo

# ivr.call.events (and with it SQLAlchemy and the store) is imported where it is used, not
# here: gunicorn's master imports this module to start the recorder, and it stays light.

log = logging.getLogger(__name__)

SOCKET_ENV = "CALM_LINE_EVENTS_SOCKET"  # set by gunicorn.conf.py for the workers it forks
FOLDER_PREFIX = "calm-line-events-"
SOCKET_NAME = "s"  # short: a Unix socket's whole path must fit in 107 bytes
MAX_PATH = 100
FRAME_ITEMS = 256  # webhooks a frame: about 40 kB, well inside a socket's send buffer
MAX_FRAME = 1 << 20  # the recorder reads no more in one message
RETRY_SECONDS = 5.0  # after a failure the worker writes its own events this long
DRAIN_SECONDS = 30.0  # at the end: how long the workers' last frames are waited for


# -- the worker's side -------------------------------------------------------------------------


class Shipper:
    """This worker's connection to the recorder (connected at the first batch, again after a
    fork or a failure).

    It never waits: the metrics' fold may run on a webhook's own thread (ivr.metrics), so a
    slow or stopped recorder must cost that webhook nothing. The socket is SOCK_SEQPACKET
    and non-blocking: each frame arrives whole or not at all, and one the recorder has no
    room for yet is handed back (send's result) for the worker to write itself."""

    def __init__(self, path: str):
        self.path = path
        self.sent = 0  # webhooks sent
        self._sock: socket.socket | None = None
        self._pid = 0
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def send(self, seen: list) -> list:
        """Send noted webhooks (events.Seen); returns those not sent, for the caller to write."""
        if time.monotonic() < self._retry_at:
            return seen
        with self._lock:  # a scrape's fold and the timer's may send at once
            for start in range(0, len(seen), FRAME_ITEMS):
                chunk = seen[start:start + FRAME_ITEMS]
                try:
                    self._connected().send(marshal.dumps([tuple(each) for each in chunk]))
                except OSError as exc:
                    self._failed(exc)
                    return seen[start:]
                self.sent += len(chunk)
        return []

    def _failed(self, exc: OSError) -> None:
        if not isinstance(exc, BlockingIOError):  # gone, not just behind: connect again later
            self._close()
        self._retry_at = time.monotonic() + RETRY_SECONDS
        log.warning("events: the recorder did not take a batch (%s); this worker writes its "
                    "own events for %.0f s", type(exc).__name__, RETRY_SECONDS)

    def _connected(self) -> socket.socket:
        if self._sock is None or self._pid != os.getpid():  # a fork's copy is never used
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            sock.setblocking(False)
            try:
                sock.connect(self.path)
            except OSError:
                sock.close()
                raise
            self._sock, self._pid = sock, os.getpid()
        return self._sock

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


def init_app(app) -> None:
    """A worker forked by gunicorn (the socket set): its events go to the recorder."""
    path = os.environ.get(SOCKET_ENV)
    if path:
        from ivr.call import events

        writer = events.writer(app)
        if writer is not None:
            writer.shipper = Shipper(path)


# -- the recorder's side -----------------------------------------------------------------------


class _Frames(socketserver.BaseRequestHandler):
    """One worker's connection: a frame a message, until it closes."""

    def handle(self) -> None:
        server: Recorder = self.server  # type: ignore[assignment]
        buffer = bytearray(MAX_FRAME + 1)
        with server.tracking(self):
            while True:
                size = self.request.recv_into(buffer)
                if not size:
                    return  # the worker closed (it exited, or gave up after a failure)
                if size > MAX_FRAME:  # cut to fit: not one of ours
                    log.warning("events: a frame over %d bytes refused", MAX_FRAME)
                    continue
                server.take(bytes(memoryview(buffer)[:size]))


class Recorder(socketserver.ThreadingUnixStreamServer):
    """Listens at `path`; hands every frame's webhooks to the app's events writer."""

    socket_type = socket.SOCK_SEQPACKET  # a frame a message: no framing to get wrong

    daemon_threads = True
    block_on_close = False  # stop() waits for the connections itself, with a deadline

    def __init__(self, path: str):
        self.writer: Any = None  # events.Writer, once attached
        self.seen: Any = tuple
        self.received = 0
        self._open: set = set()
        self._open_lock = threading.Condition()
        super().__init__(path, _Frames)  # listening from here: the kernel queues connections

    def attach(self, app) -> Recorder:
        """The app whose events writer writes what comes in (made after the socket listens:
        it takes seconds, and the workers start sending at once)."""
        from ivr.call import events

        self.seen, self.writer = events.Seen, events.writer(app)
        return self

    @contextlib.contextmanager
    def tracking(self, handler):
        with self._open_lock:
            self._open.add(handler)
        try:
            yield
        finally:
            with self._open_lock:
                self._open.discard(handler)
                self._open_lock.notify_all()

    def take(self, payload: bytes) -> None:
        try:
            seen = [self.seen(*fields) for fields in marshal.loads(payload)]
        except Exception:  # not a batch of ours: say so, never fail the connection
            log.warning("events: the recorder could not read a frame of %d bytes", len(payload))
            return
        with self._open_lock:
            self.received += len(seen)
        if seen:
            self.writer.put(seen)

    def drain(self, timeout: float) -> bool:
        """Stop listening; wait until every worker has closed its connection (their last
        frames read), then until every row is written. True if both came in time."""
        deadline = time.monotonic() + timeout
        self.shutdown()
        self.socket.close()
        with self._open_lock:
            while self._open and time.monotonic() < deadline:
                self._open_lock.wait(0.1)
            closed = not self._open
        return self.writer.flush(max(deadline - time.monotonic(), 1.0)) and closed


def serve(recorder: Recorder, stop: threading.Event, parent: int | None = None) -> Recorder:
    """Record until `stop` is set or the parent (gunicorn's master) is gone, then drain."""
    thread = threading.Thread(target=recorder.serve_forever, kwargs={"poll_interval": 0.2},
                              name="calm-line-recorder", daemon=True)
    thread.start()
    while not stop.wait(0.5):
        if parent is not None and os.getppid() != parent:
            log.warning("events: gunicorn's master is gone; the recorder stops")
            break
    if not recorder.drain(DRAIN_SECONDS):
        log.warning("events: the recorder stopped before every worker's last events were in")
    with contextlib.suppress(OSError):
        os.unlink(str(recorder.server_address))
    return recorder


@click.command("record-events", hidden=True)
@click.argument("path")
@click.argument("parent", type=int)
@click.pass_context
def record_events_command(ctx, path: str, parent: int) -> None:
    """Write the events gunicorn's workers send to PATH, until PARENT (the master) is gone
    (gunicorn.conf.py runs it: `python -m ivr.cli record-events PATH PARENT`)."""
    os.environ.pop(SOCKET_ENV, None)  # this process writes its events itself, of course
    stop = threading.Event()
    for each in (signal.SIGTERM, signal.SIGINT):
        signal.signal(each, lambda *_: stop.set())
    recorder = Recorder(path)  # listening before the app is made: that takes seconds
    app = ctx.ensure_object(ScriptInfo).load_app()
    with app.app_context():
        serve(recorder.attach(app), stop, parent)


# -- gunicorn's master -------------------------------------------------------------------------


def start(app_uri: str | None) -> tuple[subprocess.Popen, str] | None:
    """Start the recorder for the line's app (not for another app served by the same web line,
    as the benchmarks' references are), and set its socket for the workers to come."""
    if not (app_uri or "").startswith("ivr:"):
        return None
    folder = None
    try:
        folder = tempfile.mkdtemp(prefix=FOLDER_PREFIX)  # mode 0700: only this user connects
        path = os.path.join(folder, SOCKET_NAME)
        if len(path) > MAX_PATH:
            raise OSError(f"{path} is too long for a Unix socket (set TMPDIR shorter)")
        process = subprocess.Popen([sys.executable, "-m", "ivr.cli", "record-events", path,
                                    str(os.getpid())])
    except OSError as exc:  # the line runs on without it: each worker writes its own events
        log.warning("events: no recorder (%s); each worker writes its own events", exc)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        return None
    os.environ[SOCKET_ENV] = path  # workers forked from now on send here
    return process, folder


def stop(started: tuple[subprocess.Popen, str] | None) -> None:
    """At gunicorn's exit (its workers gone): let the recorder drain, then remove its folder."""
    if started is None:
        return
    process, folder = started
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(DRAIN_SECONDS + 10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    shutil.rmtree(folder, ignore_errors=True)

