"""`ivr purge`: delete what is no longer needed, in every part that keeps rows."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from ivr.call import events
from ivr.staff.simulator.web import calls
from ivr.texts import outbox


def _age(value: str, option: str):
    try:
        return outbox.parse_age(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@click.command("purge")
@click.option("--older-than", "older_than", default="30d", show_default=True,
              help="Age of the texts and records to delete: 30d, 12h, 90m.")
@click.option("--events-older-than", "events_older_than", default="400d", show_default=True,
              help="Age of the anonymous events to delete: 400d, 90d.")
@with_appcontext
def purge_command(older_than, events_older_than):
    """Delete old texts and records (keeps opt-outs and texts still to send), old anonymous
    events, and expired practice calls."""
    texts_age, events_age = _age(older_than, "--older-than"), _age(events_older_than, "--events-older-than")
    counts = outbox.purge(texts_age)
    click.echo(", ".join(f"{count} {name.replace('_', ' ')}" for name, count in counts.items())
               + f" deleted (older than {older_than})")
    click.echo(f"{events.purge(events_age)} anonymous events deleted (older than {events_older_than})")
    click.echo(f"{calls().prune()} expired practice calls deleted")
