"""`ivr serve`: the line on this machine, with texts shown instead of sent."""
from __future__ import annotations

import logging
import os

import click
from werkzeug.serving import run_simple

BANNER = """
Calm Line is running at {local}

  Health check      {local}/healthz
  Staff simulator   {local}/simulator   (password: {password})

  To connect a Twilio number, expose this address over https (for example
  `ngrok http {port}`), set PUBLIC_BASE_URL to that address and
  TWILIO_AUTH_TOKEN to your account's token, then set on the number:
    A call comes in       POST {public}/voice
    Call status changes   POST {public}/voice/status
    Primary handler fails POST {public}/voice/fallback
    A message comes in    POST {public}/sms/inbound
{texts}"""


@click.command("serve")
@click.option("--host", default=lambda: os.environ.get("HOST", "127.0.0.1"), show_default="127.0.0.1")
@click.option("--port", default=lambda: int(os.environ.get("PORT", "5000")), type=int,
              show_default="5000")
def serve(host: str, port: int):
    """Run the line locally (SQLite, the simulator, texts kept locally)."""
    from ivr import logs, store
    from ivr.cli.startup import app_or_exit
    from ivr.staff import login as staff
    from ivr.texts import worker

    app = app_or_exit()
    with app.app_context():
        store.upgrade()  # so `ivr serve` works on a new machine even without `ivr db upgrade`
    local = f"http://{host}:{port}"
    password, generated = staff.password_for(app)
    if app.config.get("TWILIO_ACCOUNT_SID"):
        texts = "  Texts are sent through Twilio by `ivr worker` (run it beside this).\n"
    else:
        worker.start_local_worker(app)
        texts = ("  No Twilio account is set: texts are not sent but kept, and shown in the\n"
                 "  simulator once a call ends.\n")
    click.echo(BANNER.format(
        local=local, port=port, texts=texts,
        password=password + (" - made for this machine; set STAFF_PASSWORD" if generated else ""),
        public=app.config.get("PUBLIC_BASE_URL") or "https://<your-tunnel>"))
    logs.set_console_level(logging.NOTSET)  # quiet while starting; now each request shows
    # Not app.run(): Flask ignores it inside a `flask`-style command.
    run_simple(host, port, app, threaded=True, use_reloader=False)
