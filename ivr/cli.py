"""The `ivr` command.

Commands that need the running app's settings and database are Flask CLI
commands (with an app context); the flow tools work on files alone, so they
still run when the flow is broken and the app would refuse to start.
"""
from __future__ import annotations

import click
from flask.cli import FlaskGroup, with_appcontext

from . import create_app


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
    from . import store

    store.upgrade()
    click.echo("database is up to date")


# Each part of the line adds its commands below, one line each.
from .serve import serve  # noqa: E402

main.add_command(serve)
