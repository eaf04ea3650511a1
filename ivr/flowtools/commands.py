"""`ivr check`, `ivr schema`, `ivr graph` and `ivr script`: tools for the flow files.

They read flows.yaml and the prompts directly, never the app, so they still
run when the flow is broken and the app would refuse to start. `ivr check`
goes through flow.load, the very code the app runs at start.
"""
from __future__ import annotations

import contextlib
import dataclasses
import sys
from pathlib import Path

import click

from ivr.call import flow as flow_module
from ivr.flowtools import checks, graph, script, validate
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


def collect(flows_file, prompts_dir) -> list[Problem]:
    """Every problem of the flow, errors and warnings, found as the app finds them at start."""
    try:
        _, warnings = validate.load(flows_file, prompts_dir)
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
def script_command(flows_file, prompts_dir, fmt, output):
    """The whole line for review and sign-off: every step's words, choices, links and paths."""
    fmt = fmt or FORMAT_BY_SUFFIX.get(Path(output).suffix.lower() if output else "", "md")
    if fmt not in ("md", "html"):
        raise click.UsageError(f"--format {fmt} is not a script format: use md or html")
    every, optional, raw_nodes, problems = load_for_view(flows_file, prompts_dir)
    _report(problems)
    files = [Path(flows_file), flow_module.prompts_file(prompts_dir)]
    blocks = script.document(every, raw_nodes, files, [relative(p) for p in problems], optional)
    _write(script.to_html(blocks) if fmt == "html" else script.to_markdown(blocks), output)


COMMANDS = [check_command, schema_command, graph_command, script_command, understand_command]
