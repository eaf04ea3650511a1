"""`ivr check`, `ivr schema`, `ivr graph` and `ivr script`: tools for the flow files.

They read flows.yaml and the prompts directly, never the app, so they still
run when the flow is broken and the app would refuse to start. `ivr check`
goes through flow.load, the very code the app runs at start.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import textwrap
from pathlib import Path

import click

from ivr import config
from ivr.call import flow as flow_module
from ivr.flowtools import checks, graph, languages, paths, script, validate
from ivr.flowtools.understand import understand_command
from ivr.problems import FlowError, Problem

# Codes that stop the flow being built at all: nothing else can be checked.
UNBUILDABLE = {"E000", "E001", "E002", "E010", "E011"}


_default_flows = validate.default_flows
_default_prompts = validate.default_prompts


def flow_options(command):
    command = click.option("--prompts", "prompts_dir", type=click.Path(file_okay=False),
                           default=_default_prompts, show_default="$PROMPTS_DIR or ./prompts",
                           help="The folder of prompt files (en-GB.yaml).")(command)
    command = click.option("--flows", "flows_file", type=click.Path(dir_okay=False),
                           default=_default_flows, show_default="$FLOWS_FILE or ./flows.yaml",
                           help="The flow file.")(command)
    return command


def flow_settings() -> dict:
    """The settings the flow depends on, from the environment as the app reads them
    (TEXT_MAX_SEGMENTS: the texts are checked against the size they will be sent at)."""
    values = {}
    with contextlib.suppress(config.SettingError):  # a bad one: the app names it at start
        values["TEXT_MAX_SEGMENTS"] = config.from_env().get("TEXT_MAX_SEGMENTS")
    return values


def collect(flows_file, prompts_dir) -> list[Problem]:
    """Every problem of the flow, errors and warnings, found as the app finds them at start."""
    try:
        _, warnings = validate.load(flows_file, prompts_dir, settings=flow_settings())
        return list(warnings)
    except FlowError as exc:
        return list(exc.problems)


def relative(problem: Problem) -> Problem:
    """The problem with its file relative to the current folder, when it is under it."""
    path = Path(problem.file)
    if path.is_absolute():
        with contextlib.suppress(ValueError):
            path = path.relative_to(Path.cwd())
    return dataclasses.replace(problem, file=str(path))


def _shown(problem: Problem) -> str:
    return str(relative(problem))


@click.command("check")
@flow_options
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
def check_command(flows_file, prompts_dir, strict):
    """Check the flow and the prompts; report every problem with its file and line.

    Exits 1 when there is an error (the app would refuse to start), or with
    --strict a warning. docs/flows.md explains each code and how to mend it.
    """
    problems = collect(flows_file, prompts_dir)
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity != "error"]
    if errors:
        click.echo("Errors:")
        for problem in errors:
            click.echo(_shown(problem))
    if warnings:
        if errors:
            click.echo()
        click.echo("Warnings:")
        for problem in warnings:
            click.echo(_shown(problem))
    files = f"{_relative(flows_file)} and {_relative(flow_module.prompts_file(prompts_dir))}"
    if not problems:
        click.echo(f"{files}: no problems.")
        return
    click.echo()
    summary = f"{_count(len(errors), 'error')}, {_count(len(warnings), 'warning')} in {files}"
    if errors:
        click.echo(f"{summary}: the line will not start until the errors are mended "
                   f"(docs/flows.md says how).")
        sys.exit(1)
    click.echo(f"{summary}.")
    if strict:
        sys.exit(1)


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"


def _relative(path) -> str:
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@click.command("schema")
@click.option("--prompts", "which", flag_value="prompts", help="The schema of the prompts file instead.")
@click.option("--flows", "which", flag_value="flows", default=True,
              help="The schema of flows.yaml (default).")
def schema_command(which):
    """Print the JSON Schema of flows.yaml (or of the prompts file)."""
    path = flow_module.SCHEMA_PATH if which == "flows" else checks.PROMPTS_SCHEMA
    click.echo(path.read_text(), nl=False)


def load_for_view(flows_file, prompts_dir):
    """The flow to draw or print, even with errors, as long as it can be built.

    Returns (flow with every optional choice, the steps only those choices
    reach, the raw nodes of flows.yaml, the problems of `ivr check`).
    """
    problems = collect(flows_file, prompts_dir)
    if any(p.code in UNBUILDABLE or p.code == "E012" for p in problems if p.severity == "error"):
        blocking = [p for p in problems if p.severity == "error"]
        raise click.ClickException("the flow cannot be read:\n" + "\n".join(map(_shown, blocking)))
    flows_doc, prompts_doc = flow_module.load_docs(flows_file, prompts_dir)
    every = flow_module.build(flows_doc, prompts_doc, dict(flow_module.ALL_OPTIONAL))
    plain = flow_module.build(flows_doc, prompts_doc, {})
    # The other languages that pass their checks, so the welcome shows their offers.
    others, _ = languages.load(every, prompts_doc, flows_doc, prompts_dir)
    every = flow_module.with_languages(every, others)
    return every, graph.optional_steps(every, plain), flows_doc.data["nodes"], problems


def _report(problems: list[Problem]) -> None:
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        click.echo(f"note: the flow has {_count(len(errors), 'error')} (run ivr check):", err=True)
        for problem in errors:
            click.echo("  " + _shown(problem), err=True)


def _write(text: str, output) -> None:
    if output is None:
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


FORMAT_BY_SUFFIX = {".svg": "svg", ".dot": "dot", ".gv": "dot", ".mmd": "mermaid",
                    ".mermaid": "mermaid", ".md": "md", ".html": "html", ".htm": "html"}


@click.command("graph")
@flow_options
@click.option("--format", "fmt", type=click.Choice(["svg", "dot", "mermaid"]),
              help="svg needs Graphviz (`dot`). Default: from the -o suffix, else dot.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file, not stdout.")
@click.option("--all-edges", is_flag=True,
              help="Draw the keys every menu has (*, 0, #) and too many tries as edges too "
                   "(by default each menu lists them).")
def graph_command(flows_file, prompts_dir, fmt, output, all_edges):
    """Draw the flow: steps with their first words, keys and phrases, the urgent branch in red."""
    fmt = fmt or FORMAT_BY_SUFFIX.get(Path(output).suffix.lower() if output else "", "dot")
    if fmt not in ("svg", "dot", "mermaid"):
        raise click.UsageError(f"--format {fmt} is not a diagram format: use svg, dot or mermaid")
    every, optional, raw_nodes, problems = load_for_view(flows_file, prompts_dir)
    _report(problems)
    if fmt == "mermaid":
        text = graph.to_mermaid(every, raw_nodes, optional, all_keys=all_edges)
    else:
        text = graph.to_dot(every, raw_nodes, optional, all_keys=all_edges)
        if fmt == "svg":
            try:
                text = graph.to_svg(text)
            except (graph.GraphvizMissing, RuntimeError) as exc:
                raise click.ClickException(str(exc)) from None
    _write(text, output)


@click.command("script")
@flow_options
@click.option("--format", "fmt", type=click.Choice(["md", "html"]),
              help="md for review diffs, html to read or print. Default: from the -o suffix, else md.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file, not stdout.")
@click.option("--technical", is_flag=True,
              help="The engineer's version: step ids, prompt keys, setting names, file hashes.")
@click.option("--diff", "against", metavar="REV",
              help="What callers hear differently from REV: a git revision (HEAD~1, main) or a "
                   "folder holding flows.yaml and prompts/.")
@click.option("--lang", "lang", metavar="CODE",
              help="The line in another language (pl-PL): its words, hints and examples.")
def script_command(flows_file, prompts_dir, fmt, output, technical, against, lang):
    """The whole line in plain words, for sign-off (or, with --diff, what a change alters).

    Every step's words, where each key and phrase leads, the text, every path
    with its time, and a sign-off block. --technical adds the names in the files.
    """
    fmt = fmt or FORMAT_BY_SUFFIX.get(Path(output).suffix.lower() if output else "", "md")
    if fmt not in ("md", "html"):
        raise click.UsageError(f"--format {fmt} is not a script format: use md or html")
    every, optional, raw_nodes, problems = load_for_view(flows_file, prompts_dir)
    _report(problems)
    if against:
        from ivr.flowtools import scriptdiff

        try:
            old_flows, old_prompts, cleanup = scriptdiff.fetch(against, flows_file, prompts_dir)
        except scriptdiff.RevisionError as exc:
            raise click.ClickException(str(exc)) from None
        try:
            old, _, _, _ = load_for_view(old_flows, old_prompts)
        finally:
            cleanup()
        blocks = scriptdiff.document(old, every, against, technical)
        _write(script.to_html(blocks) if fmt == "html" else script.to_markdown(blocks), output)
        return
    files = [Path(flows_file), flow_module.prompts_file(prompts_dir)]
    first = every
    if lang:
        every = _in_language(flows_file, prompts_dir, lang)
        files.append(flow_module.prompts_file(prompts_dir, lang))
    make = script.document if technical else script.staff_document
    blocks = make(every, raw_nodes, files, [relative(p) for p in problems], optional)
    if lang:  # how a caller comes to this language: the offer in the first one's welcome
        from ivr.flowtools import plain

        offer = next((o for o in first.offers if o.code == lang), None)
        said = [first.written(first.prompts[k]) for k in (offer.prompts if offer else ())]
        blocks[1:1] = [("p", f"How a caller chooses {lang}: in the {first.code} welcome, they "
                             f"hear (in {lang}):"), ("ol", said),
                       ("ul", plain.offer_lines(first, lang))]
    if lang and every.draft:
        blocks.insert(0, ("p", f"draft: not yet reviewed by a fluent speaker ({lang}: "
                               f"reviewed_by is empty in prompts/{lang}.yaml; docs/translation.md)"))
    _write(script.to_html(blocks) if fmt == "html" else script.to_markdown(blocks), output)


def _in_language(flows_file, prompts_dir, lang: str):
    """The flow (every optional choice on) in another of its languages; a clear error else."""
    from ivr.flowtools import validate

    try:
        first, _ = validate.load(flows_file, prompts_dir, dict(flow_module.ALL_OPTIONAL))
    except FlowError as exc:
        raise click.ClickException("the flow has errors (run ivr check):\n"
                                   + "\n".join(map(_shown, exc.errors))) from None
    flow = first.in_language(lang)
    if flow is None:
        known = ", ".join(f.code for f in first.all_languages)
        raise click.UsageError(f"--lang {lang}: no prompts/{lang}.yaml (languages: {known})")
    return flow


def _default_paths() -> list[str]:
    here = Path("paths")
    return [str(here if here.is_dir() else config.REPO_ROOT / "paths")]


def _path_results(files: list[Path], line_for) -> list[paths.Result]:
    results = []
    for file in files:
        shown = _relative(file)
        try:
            test = paths.parse(file)
        except FlowError as exc:
            failures = [paths.Failure(shown, p.line, p.col, p.message) for p in exc.problems]
            results.append(paths.Result(shown, file.stem, False, 0, failures))
            continue
        test.file = shown
        line, skipped = line_for(test)
        if line is None:
            results.append(paths.Result(shown, test.name, True, len(test.steps), notes=[skipped]))
            continue
        results.append(paths.run(test, line))
    return results


@click.command("paths")
@click.argument("files", nargs=-1, type=click.Path(exists=True))
@flow_options
@click.option("--json", "as_json", is_flag=True, help="Every result as JSON.")
@click.option("--url", metavar="URL",
              help="Run against a deployed line (signed with TWILIO_AUTH_TOKEN; every call is "
                   "marked as practice, so no text is sent and no figure counted).")
def paths_command(files, flows_file, prompts_dir, as_json, url):
    """Play the path tests (paths/*.yaml): each a call that must go as written.

    A failure names the file and line of the step and what the line said
    instead. Exits 1 when any path fails.
    """
    import tempfile

    found = paths.files_in(files or _default_paths())
    if not found:
        raise click.UsageError("no path files found (paths/*.yaml)")
    with tempfile.TemporaryDirectory(prefix="calm-line-paths-") as folder:
        if url:
            token = os.environ.get("TWILIO_AUTH_TOKEN")
            if not token:
                raise click.UsageError("--url needs TWILIO_AUTH_TOKEN, the line's auth token, "
                                       "in the environment")
            remote = paths.remote_line(url, token)

            def line_for(test):
                if test.settings:
                    return None, "skipped: it needs settings a deployed line has its own of"
                if test.replied_stop:
                    return None, "skipped: a deployed line cannot be told a number sent STOP"
                return remote, ""
        else:
            apps: dict = {}

            def line_for(test):
                key = tuple(sorted(test.settings.items()))
                if key not in apps:
                    sub = Path(folder) / str(len(apps))
                    try:
                        apps[key] = paths.local_line(paths.in_process_app(
                            flows_file, prompts_dir, str(sub), test.settings))
                    except FlowError as exc:
                        raise click.ClickException(
                            "the flow is broken (ivr check):\n"
                            + "\n".join(map(_shown, exc.errors or exc.problems))) from None
                return apps[key], ""

        results = _path_results(found, line_for)
    _show_paths(results, as_json)
    if not all(result.passed for result in results):
        sys.exit(1)


def _show_paths(results: list[paths.Result], as_json: bool) -> None:
    import json

    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
        return
    for result in results:
        mark = "pass" if result.passed else "FAIL"
        click.secho(f"{mark}  {result.file}  {result.name}", fg=None if result.passed else "red")
        for failure in result.failures:
            click.echo(textwrap.indent(str(failure), "      "))
        for note in result.notes:
            click.echo(f"      note: {note}")
    failed = sum(not r.passed for r in results)
    click.echo(f"{len(results) - failed} of {_count(len(results), 'path')} passed."
               + (f" {failed} failed." if failed else ""))


COMMANDS = [check_command, schema_command, graph_command, script_command, paths_command,
            understand_command]
