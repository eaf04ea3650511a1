"""The text after the call: outbox, worker, sender, replies and delivery status, the body, phone numbers."""
from __future__ import annotations


def init_app(app) -> None:
    """The sender (Twilio, or the local record), the SMS webhooks and, for a local run, a sender thread."""
    from ivr import health, metrics
    from ivr.texts import limits, sender, sms, worker

    worker.check_settings(app.config)  # before anything starts: a lease too short sends twice
    app.extensions[sender.EXTENSION] = sender.build(app.config)
    app.extensions.setdefault(health.WARNINGS, []).extend(
        [limits.CeilingWarning(), limits.GivenUpWarning()])
    app.extensions.setdefault(metrics.COLLECTORS, []).append(limits.LimitCollector(app))
    sms.init_app(app)
    if app.config.get("LOCAL_WORKER") and not app.config.get("TWILIO_ACCOUNT_SID"):
        worker.start_local_worker(app)
