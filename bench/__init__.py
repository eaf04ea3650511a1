"""Calm Line's benchmarks: `python -m bench` (see BENCHMARKS.md).

Every figure is measured side by side with a baseline in the same run:
the webhooks against a bare Flask app under the same gunicorn settings,
the consent step with Twilio answering at once against Twilio answering
slowly, the outbox drain against the ideal count / rate.
"""
