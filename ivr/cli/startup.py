"""Building the app for a command: a broken flow or setting is explained, never a traceback."""
from __future__ import annotations

import click
from flask import Flask

from ivr import create_app
from ivr.config import SettingError
from ivr.problems import FlowError


def app_or_exit() -> Flask:
    """The app, or the problems that stop it (file:line:col, or the setting) and exit 1."""
    try:
        return create_app()
    except FlowError as exc:
        click.secho("The line cannot start: the flow has errors (ivr check says the same, "
                    "and docs/flows.md how to mend each):", err=True, fg="red")
        from ivr.flowtools.commands import relative

        for problem in exc.errors or exc.problems:
            click.echo(f"  {relative(problem)}", err=True)
        raise SystemExit(1) from None
    except SettingError as exc:
        click.secho(f"The line cannot start: {exc}", err=True, fg="red")
        raise SystemExit(1) from None
