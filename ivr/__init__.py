"""Calm Line: the app factory."""
from __future__ import annotations

import logging
import os

from dotenv import load_dotenv
from flask import Flask

from ivr import config as settings
from ivr import logs

log = logging.getLogger(__name__)


def _configure(app: Flask, test_config: dict | None) -> None:
    if test_config is None:
        load_dotenv(os.path.join(os.getcwd(), ".env"))  # gunicorn does not read .env by itself
        app.config.update(settings.from_env())
    else:
        app.config.update(settings.from_env({}))
        app.config.update(test_config)
    settings.check(app.config)
    logs.configure(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    os.makedirs(app.instance_path, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = settings.instance_secret(app.instance_path, "secret_key")
    if not app.config.get("TWILIO_AUTH_TOKEN"):
        # Never "accept everything": the local run signs with a token of its own.
        app.config["TWILIO_AUTH_TOKEN"] = settings.instance_secret(app.instance_path, "local_auth_token")
        app.config["LOCAL_AUTH_TOKEN"] = True
        # A fault only where Twilio is meant to call (a public address is set); on
        # a local run it is how the line is meant to work, so not a warning there.
        level = logging.WARNING if app.config.get("PUBLIC_BASE_URL") else logging.INFO
        log.log(level, "TWILIO_AUTH_TOKEN is not set: webhooks accept only requests signed "
                "with the local token in %s (the simulator uses it; real Twilio calls get 403)",
                os.path.join(app.instance_path, "local_auth_token"))
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = "sqlite:///" + os.path.join(app.instance_path, "calmline.sqlite")


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app. test_config replaces the environment (tests and tools)."""
    instance = (test_config or {}).get("INSTANCE_PATH") or os.environ.get("INSTANCE_PATH")
    app = Flask(__name__, instance_path=instance or None, instance_relative_config=True)
    _configure(app, test_config)

    from ivr import front, health, metrics, security, store
    from ivr.call import answers, content, events, voice
    from ivr.flowtools import validate

    answers.init_app(app)  # kept menu answers, sent before Flask; inside any ProxyFix
    security.init_app(app)
    # Every check runs here, once: a broken flow stops the app with file:line:col problems.
    flow, warnings = validate.load(app.config["FLOWS_FILE"], app.config["PROMPTS_DIR"], settings=app.config)
    content.init_app(app, flow, warnings)
    store.init_app(app)
    app.register_blueprint(front.bp)  # `/`: what the line is, links for staff
    app.register_blueprint(health.bp)
    app.register_blueprint(voice.bp)
    _register_features(app, metrics, events)
    return app


def _register_features(app: Flask, metrics, events) -> None:
    """The follow-up text, the staff pages and the figures: each registers its own routes."""
    from ivr import staff, texts
    from ivr.call import recorder

    texts.init_app(app)  # the sender, /sms/*, and a local sender thread when asked
    staff.init_app(app)  # /staff/login, /simulator, /staff/stats
    metrics.init_app(app)  # /metrics; its timer (registered first) runs last, so it counts all
    events.init_app(app)  # anonymous events from the voice webhooks (after_request)
    recorder.init_app(app)  # under gunicorn: the events written by a process of their own
