"""`ivr simulate`: walk the line from a terminal, by hand or from a script.

    ivr simulate                                  # interactive
    ivr simulate --keys 2,1,#,1                   # scripted
    ivr simulate --say "remove the picture" --keys "#,1" --json
    ivr simulate --from withheld --keys "#,1,07400123456#,1"
    ivr simulate --url https://line.example.org   # a running server

Scripted actions run in the order given on the command line:
  --keys "1,*,0,9"   comma-separated keys; a run of digits such as 07400123456# is keyed in
                     one after the other (the # ends the number, as on a phone, and Twilio
                     does not send it); an empty item or - is a silence
  --say "words"      one thing the caller says (commas allowed)
  --do ACTION        key:1, keys:07400123456#, say:words, silence or hangup
When the script ends and the line is still talking, the caller hangs up.

Exit code: 0 when every step answered valid TwiML; 1 when any step answered an
error or TwiML Twilio could not play; 2 when the script does not fit the call
(keys where the line listens for words only, or actions after it hung up).
"""
from __future__ import annotations

import json
import logging
import shutil
import subprocess

import click
from flask import current_app
from flask.cli import with_appcontext

from ivr.call.caller import SIMULATED_FROM, HttpTransport
from ivr.staff.simulator.call import ScriptError, SimulatedCall, local_transport, parse_action, perform

ORDER = "calm_line.simulate.order"
QUIT = {"q", "quit", "hangup", "hang up", "exit"}
HINT = ("Type a key (0-9, * or #) or a run of keys (a number ends with #), words to say "
        "them, Enter to stay silent, q to hang up.")


class InOrder(click.Command):
    """Keeps --keys, --say and --do in the order they were given (click groups them)."""

    SCRIPT = ("keys", "say", "do")

    def parse_args(self, ctx, args):
        parser = self.make_parser(ctx)
        try:
            values, _, order = parser.parse_args(args=list(args))
        except click.UsageError:
            values, order = {}, []  # the real parse below reports it
        queues = {name: list(values.get(name) or []) for name in self.SCRIPT}
        ctx.meta[ORDER] = [(param.name, queues[param.name].pop(0)) for param in order
                           if param.name in self.SCRIPT and queues[param.name]]
        return super().parse_args(ctx, args)


def script_from(order: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """[('keys', '1,*'), ('say', 'remove')] -> [('key', '1'), ('key', '*'), ('say', 'remove')]."""
    actions = []
    for option, value in order:
        if option == "keys":
            for item in value.split(","):
                item = item.strip()
                actions.append(parse_action("silence" if item in ("", "-") else f"key:{item}"))
        elif option == "say":
            actions.append(("say", value) if value.strip() else ("silence", ""))
        else:
            actions.append(parse_action(value))
    return actions


def read_action(line: str) -> tuple[str, str]:
    """What a member of staff typed in the interactive mode."""
    text = line.strip()
    if not text:
        return "silence", ""
    if text.lower() in QUIT:
        return "hang_up", ""
    if all(ch in "0123456789*#" for ch in text.replace(" ", "")):
        return "key", text.replace(" ", "")
    return "say", text


def typed(call: SimulatedCall, action: str, value: str) -> list:
    """What staff typed, played as on the web page: a number waits for its #
    (keys go one by one, and Enter alone is the silence that sends what was keyed)."""
    if action != "key":
        return perform(call, action, value)
    entries: list = []
    for key in value:
        entries += call.key(key)
        if call.ended or (entries and entries[-1].refused):
            break
    return entries


# -- showing and speaking ------------------------------------------------------------


class Speaker:
    """Reads the line's words aloud with espeak-ng, at about the line's pace."""

    def __init__(self, enabled: bool):
        self.program = shutil.which("espeak-ng") if enabled else None
        if enabled and not self.program:
            click.secho("espeak-ng is not installed, so the words are shown but not spoken "
                        "(apt-get install espeak-ng).", err=True, fg="yellow")

    def __call__(self, sentences: list[str]) -> None:
        if not self.program:
            return
        for sentence in sentences:
            if sentence.startswith("["):  # [dialling ...]: not words the line says
                continue
            try:
                subprocess.run([self.program, "-v", "en-gb", "-s", "150", "-g", "4", sentence],
                               check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                return


WAITING = {
    "menu": "The line waits for a key or words.",
    "digits": "The line waits for a number: key the digits, then #.",
}


def show_entry(entry, buffer: str = "") -> None:
    click.secho(f"> {entry.did}", bold=True)
    if entry.refused:
        click.secho(f"  Not sent: {entry.refused}.", fg="yellow")
        return
    if entry.steps:
        click.secho(f"  [{' > '.join(entry.steps)}]", fg="cyan")
    for sentence in entry.said:
        click.echo(f"  {sentence}")
    if entry.error:
        click.secho(f"  ERROR: {entry.error}", fg="red", bold=True)
    if entry.gave_up:
        click.secho("  (the line gave up on this step after too many tries)", fg="yellow")
    if entry.waiting and not entry.ended:
        click.secho(f"  {WAITING.get(entry.waiting, '')}", dim=True)


def show_end(call) -> None:
    summary = call.summary()
    ended = summary["ended"]
    click.echo()
    click.secho(f"Call ended: {ended['message']} (last step: {ended['node'] or '-'})", bold=True,
                fg="red" if ended["how"] == "error" else None)
    if call.status_error:
        click.secho(f"ERROR: {call.status_error}", fg="red", bold=True)
    text = call.text
    if call.text_error:
        click.secho(f"The text could not be shown: {call.text_error}", fg="yellow")
    elif text is None:
        click.echo("No text was arranged on this call.")
    elif not text.get("shown"):
        click.echo(text["note"])
    else:
        segments = text["segments"]
        click.secho(f"Text to {text['to']}: {segments} segment{'s' if segments != 1 else ''}, "
                    f"{text['characters']} characters. {text['note']}", bold=True)
        for line in text["body"].splitlines():
            click.echo(f"  | {line}")


# -- the command ---------------------------------------------------------------------


def _prepare_database() -> None:
    """A fresh local SQLite file gets its tables; anything else is only checked."""
    from ivr import store

    if store.current_revision() is not None:
        return
    if store.engine().dialect.name == "sqlite":
        store.upgrade()
    else:
        click.secho("The database has no tables: run `ivr db upgrade` (texts fail until then).",
                    err=True, fg="yellow")


@click.command("simulate", cls=InOrder, epilog="Actions run in the order given.")
@click.option("--keys", multiple=True, metavar="KEYS",
              help='Keys to press, comma-separated: "1,*,0,9"; a number as 07400123456#; '
                   "- for a silence.")
@click.option("--say", multiple=True, metavar="WORDS", help="Something the caller says.")
@click.option("--do", multiple=True, metavar="ACTION",
              help="key:1, keys:07400123456#, say:words, silence or hangup.")
@click.option("--from", "from_choice", default="mobile", show_default=True,
              metavar="|".join(SIMULATED_FROM) + "|+44...",
              help="The caller's number.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole call as JSON.")
@click.option("--url", metavar="URL",
              help="Drive a running server (signs with TWILIO_AUTH_TOKEN) instead of this process.")
@click.option("--speak", is_flag=True, help="Read the words aloud with espeak-ng.")
@click.option("--verbose", "-v", is_flag=True, help="Show the app's log lines too.")
@click.option("--lang", "lang", metavar="CODE",
              help="Choose this language in the welcome, as a caller does (pl-PL: key 7).")
@click.option("--at", "at", metavar='"YYYY-MM-DD HH:MM"',
              help="Play the line as if at this time, in London (opening hours).")
@with_appcontext
def simulate(keys, say, do, from_choice, as_json, url, speak, verbose, at, lang):
    """Play a practice call: by hand, or scripted with --keys, --say and --do."""
    from ivr.call import content, hours
    from ivr.staff.simulator import texts

    if not verbose:  # the webhooks' log lines would drown the transcript
        logging.getLogger().setLevel(max(logging.getLogger().level, logging.WARNING))

    ctx = click.get_current_context()
    if at:
        try:
            at = hours.parse_moment(at).isoformat()
        except ValueError:
            raise click.BadParameter(f"{at!r} is not a time like \"2026-12-25 23:00\"",
                                     param_hint="--at") from None
    try:
        script = script_from(ctx.meta.get(ORDER, []))
    except ScriptError as exc:
        raise click.UsageError(str(exc)) from None
    app = current_app._get_current_object()
    if url:
        transport = HttpTransport(url, app.config["TWILIO_AUTH_TOKEN"])

        def reader(call_sid):
            # Found only when this machine shares the server's database (a local
            # `ivr serve`); sending a practice text from here only records it locally.
            return texts.after_call(call_sid) or {
                "sent": False, "shown": False,
                "note": "No text for this call in this machine's database "
                        "(the server may use another: see its /simulator page)."}
    else:
        _prepare_database()
        transport = local_transport(app)
        reader = texts.after_call
    try:
        call = SimulatedCall(transport, from_choice, flow=content.flow(), text_reader=reader,
                             at=at)
    except ScriptError as exc:
        raise click.BadParameter(str(exc), param_hint="--from") from None
    speaker = Speaker(speak)
    interactive = not script

    def run(entries):
        for entry in entries:
            if not as_json:
                show_entry(entry)
            if entry.said and not entry.refused:
                speaker(entry.said)

    if not as_json:
        click.secho(f"Calm Line practice call from {call.from_kind} ({call.from_number}) to "
                    f"{url or 'this process'}. No real text is sent.", dim=True)
        if interactive:
            click.secho(HINT, dim=True)
    run(call.start())
    if lang:
        try:
            run(call.choose_language(lang))
        except ScriptError as exc:
            raise click.BadParameter(str(exc), param_hint="--lang") from None
    for action, value in script:
        already_ended = call.ended
        run(perform(call, action, value))  # after the end: one "not sent" line, then stop
        if already_ended:
            break
    while interactive and not call.ended:
        try:
            line = click.prompt("", prompt_suffix="> ", default="", show_default=False,
                                err=as_json)
        except (EOFError, click.Abort):
            line = "q"
        run(typed(call, *read_action(line)))
        if call.buffer and not as_json:
            click.secho(f"  Keyed so far: {call.buffer} (press # to finish, as on the web page)",
                        dim=True)
    if not call.ended:
        run(call.hang_up())
    if as_json:
        click.echo(json.dumps(call.summary(), indent=2, ensure_ascii=False))
    else:
        show_end(call)
    if not call.ok:
        ctx.exit(1)
    if any(entry.refused for entry in call.entries) and not interactive:
        ctx.exit(2)
