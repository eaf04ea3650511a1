"""Where a webhook's time goes: replay the recorded paths in-process under pyinstrument.

    .venv/bin/python -m bench.profile [--calls 60] [--rounds 20] [--html out.html]

Prints the mean in-process time per request for the line and for the
baseline app (no server, no network: just the WSGI call), then the
profile of the line. A rough guide; the gunicorn figures are in `python -m bench`.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time

from bench.baseline import create_app as baseline_app
from bench.paths import record_calls

BASE = "http://localhost"
TOKEN = "bench-token"


def _environs(app, requests):
    """Prebuilt WSGI environs, so the client costs as little as possible."""
    from werkzeug.test import EnvironBuilder

    built = []
    for request in requests:
        builder = EnvironBuilder(path=request.path, base_url=BASE, method="POST",
                                 data=request.body,
                                 content_type="application/x-www-form-urlencoded",
                                 headers={"X-Twilio-Signature": request.signature(BASE, TOKEN)})
        environ = builder.get_environ()
        environ["RAW_URI"] = request.path  # as gunicorn gives it: the target as sent, query and all
        built.append(environ)
        builder.close()
    return built


def _replay(app, environs, rounds: int) -> float:
    def start_response(status, headers, exc_info=None):
        if not status.startswith("200"):
            raise AssertionError(status)

    count, started = 0, time.process_time()
    for _ in range(rounds):
        for environ in environs:
            environ = dict(environ)
            environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].getvalue()
                                               if hasattr(environ["wsgi.input"], "getvalue")
                                               else b"")
            body = app(environ, start_response)
            b"".join(body)
            if hasattr(body, "close"):
                body.close()
            count += 1
    return (time.process_time() - started) / count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--html", help="write pyinstrument's HTML report here")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--breakdown", action="store_true",
                        help="also: CPU per request with parts of the line switched off in turn")
    args = parser.parse_args(argv)

    from ivr import create_app, store

    tmp = tempfile.mkdtemp(prefix="calmline-profile-")
    app = create_app({
        "SECRET_KEY": "bench", "TWILIO_AUTH_TOKEN": TOKEN,
        "INSTANCE_PATH": os.path.join(tmp, "instance"),
        "DATABASE_URL": "sqlite:///" + os.path.join(tmp, "profile.sqlite"),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
    })
    with app.app_context():
        store.upgrade()
    import logging

    logging.getLogger().handlers[:] = [h for h in logging.getLogger().handlers
                                       if not getattr(h, "_calm_line", False)] + [
        logging.NullHandler()]
    recorded = record_calls(args.calls, app=app)
    _freeze()
    requests = [request for request, _, _ in recorded]
    sizes = [size for _, _, size in recorded]
    environs = _environs(app, requests)
    base = baseline_app(int(statistics.mean(sizes)))
    base_environs = _environs(base, requests)
    _replay(app, environs, 1)  # warm the renderer cache, as a running server is
    line_t = min(_replay(app, environs, args.rounds) for _ in range(3))
    base_t = min(_replay(base, base_environs, args.rounds) for _ in range(3))
    print(f"{len(requests)} requests x {args.rounds} rounds")
    print(f"line     {line_t * 1e6:8.1f} us/request")
    print(f"baseline {base_t * 1e6:8.1f} us/request  (line / baseline = {line_t / base_t:.2f})")
    _references(app, requests, int(statistics.mean(sizes)), args.rounds)
    if args.breakdown:
        _breakdown(app, requests, args.rounds, base_t)
    if args.no_profile:
        return 0
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002)
    profiler.start()
    _replay(app, environs, args.rounds)
    profiler.stop()
    if args.html:
        with open(args.html, "w") as handle:
            handle.write(profiler.output_html())
    print(profiler.output_text(unicode=False, color=False, show_all=False))
    return 0


def _freeze() -> None:
    """As gunicorn.conf.py's post_worker_init does once the app is loaded."""
    import gc

    gc.collect()
    gc.freeze()


def _references(app, requests, size: int, rounds: int) -> None:
    """In-process CPU per request (the writer threads' share included) of the line and the
    references of `python -m bench`, on the menu steps and on the whole mix."""
    from bench.references import least_app, sample_app
    from bench.webhooks import menu_steps
    from ivr.call import events

    apps = {"line": app, "sample style": sample_app(size), "least correct": least_app(size, TOKEN),
            "constant": baseline_app(size)}
    _freeze()  # each app loaded, as in its own gunicorn worker
    sets = {"menu steps": menu_steps(requests), "mix": requests}
    print(f"\nCPU per request, in-process, best of 3 ({len(sets['menu steps'])} menu steps, "
          f"{len(requests)} in the mix)")
    print(f"{'':16s}" + "".join(f"{name:>16s}" for name in apps))
    for label, chosen in sets.items():
        cells = []
        for name, each in apps.items():
            environs = _environs(each, chosen)
            _replay(each, environs, 1)
            best = float("inf")
            for _ in range(3):
                started = time.process_time()
                _replay(each, environs, rounds)
                if name == "line":
                    events.flush(app)  # the writer's CPU counts: it runs on the same cores
                best = min(best, (time.process_time() - started) / (rounds * len(chosen)))
            cells.append(best)
        print(f"{label:16s}" + "".join(f"{t * 1e6:14.0f}us" for t in cells))


def _breakdown(app, requests, rounds: int, base_t: float) -> None:
    """Switch parts off one after another and see what each costs (in-process CPU)."""
    import logging

    from ivr import security

    def db_step(request) -> bool:
        form = dict(request.params)
        return (request.path.startswith(("/voice/status", "/voice/number/"))
                or "number_confirm" in request.path
                or (request.path.startswith("/voice/answer/finish") and form.get("Digits") == "1"))

    plain = [r for r in requests if not db_step(r)]
    rows = []

    def measure(label: str) -> None:
        mix, menus = _environs(app, requests), _environs(app, plain)
        _replay(app, mix, 1)
        rows.append((label, min(_replay(app, mix, rounds) for _ in range(3)),
                     min(_replay(app, menus, rounds) for _ in range(3))))

    measure("the line as it runs")
    hooks = ("ivr.call.events", "ivr.metrics")
    for funcs in (app.before_request_funcs, app.after_request_funcs):
        for key, registered in funcs.items():
            funcs[key] = [f for f in registered if getattr(f, "__module__", "") not in hooks]
    measure("- events and metrics hooks")
    logging.getLogger().setLevel(logging.WARNING)
    measure("- INFO log lines")
    original = security.signature_ok
    security.signature_ok = lambda: True
    try:
        measure("- signature check")
    finally:
        security.signature_ok = original
    print(f"\nCPU per request, in-process ({len(requests)} requests; {len(plain)} need no database)")
    print(f"{'':32s} {'all':>9s} {'no-db steps':>12s}")
    for label, mix_t, plain_t in rows:
        print(f"{label:32s} {mix_t * 1e6:7.0f}us {plain_t * 1e6:10.0f}us")
    print(f"{'baseline (constant document)':32s} {base_t * 1e6:7.0f}us {base_t * 1e6:10.0f}us")


if __name__ == "__main__":
    sys.exit(main())
