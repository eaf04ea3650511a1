"""The `ivr` command.

Commands that need the running app's settings and database are Flask CLI
commands (with an app context); the flow tools work on files alone, so they
still run when the flow is broken and the app would refuse to start.
"""
from __future__ import annotations

import click
from flask.cli import FlaskGroup, with_appcontext

from ivr import create_app


@click.group(cls=FlaskGroup, create_app=create_app, add_version_option=False)
def main():
    """Calm Line: run, check and look after the phone line."""


@main.group()
def db():
    """The database."""


@db.command("upgrade")
@with_appcontext
def db_upgrade():
    """Create the tables or bring them up to date."""
    from ivr import store

    store.upgrade()
    click.echo("database is up to date")


# Each part of the line adds its commands below, one line each.
from ivr.cli.serve import serve  # noqa: E402

main.add_command(serve)
from ivr.cli.purge import purge_command  # noqa: E402
from ivr.texts.worker import worker_command  # noqa: E402

main.add_command(worker_command)
main.add_command(purge_command)
from ivr.staff.simulator.cli import simulate  # noqa: E402

main.add_command(simulate)
from ivr.flowtools.commands import COMMANDS as FLOW_COMMANDS  # noqa: E402

for _command in FLOW_COMMANDS:  # check, schema, graph, script
    main.add_command(_command)
from ivr.cli.twilio_setup import twilio_group  # noqa: E402
from ivr.staff.stats import stats_command  # noqa: E402

main.add_command(stats_command)
main.add_command(twilio_group)


@main.command("call-tag")
@click.argument("call_sids", nargs=-1, required=True)
def call_tag(call_sids):
    """The log tag of each CallSid (logs show this tag, never the CallSid itself)."""
    from ivr.logs import hash_call_sid

    for call_sid in call_sids:
        click.echo(f"{call_sid} {hash_call_sid(call_sid.strip())}")
