"""The `ivr` command.

Commands that need the running app's settings and database are Flask CLI
commands (with an app context); the flow tools work on files alone, so they
still run when the flow is broken and the app would refuse to start.
"""
from __future__ import annotations

import logging

import click
from flask.cli import FlaskGroup, with_appcontext

from ivr import logs
from ivr.cli.startup import app_or_exit

# The service whose log lines are its record (run by the Procfile): it keeps
# LOG_LEVEL. Every other command shows only what is wrong unless -v (`ivr serve`
# is quiet while it starts, then shows each request).
SERVICES = {"worker"}


class LineGroup(FlaskGroup):
    """Flask's command group with our commands only.

    Flask's own run, routes and shell are left out (`ivr serve` runs the line), and
    the app is not built just to list the commands, so `ivr --help` is instant and quiet.
    """

    def __init__(self, **kwargs):
        super().__init__(add_default_commands=False, **kwargs)
        # --app and --debug choose another Flask app and its debugger: not for this line.
        self.params = [p for p in self.params if p.name not in ("app", "debug")]

    def get_command(self, ctx, name):
        return click.Group.get_command(self, ctx, name)

    def list_commands(self, ctx):
        return click.Group.list_commands(self, ctx)


@click.group(cls=LineGroup, create_app=app_or_exit, add_version_option=False)
@click.option("-v", "--verbose", is_flag=True, help="Show the app's log lines too.")
@click.pass_context
def main(ctx, verbose):
    """Calm Line: run, check and look after the phone line."""
    if not verbose and ctx.invoked_subcommand not in SERVICES:
        logs.set_console_level(logging.WARNING)
        ctx.call_on_close(lambda: logs.set_console_level(logging.NOTSET))


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
from ivr.call.recorder import record_events_command  # noqa: E402

main.add_command(record_events_command)  # hidden: gunicorn.conf.py runs it
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
