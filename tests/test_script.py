"""`ivr script` for sign-off (plain words, a sign-off block) and `ivr script --diff REV`."""
from __future__ import annotations

import re
import subprocess

from click.testing import CliRunner
from conftest import copy_shipped

from ivr.config import REPO_ROOT
from ivr.flowtools import commands, validate

SCHOOL_KEY = '      - key: "3"\n        to: school\n        prompt: main.school'
# A sentence of the shipped words, and that sentence changed as a writer might.
SAID = validate.load(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts")[0].prompts[
    "steps.not_in_trouble"]
CHANGED = SAID.removesuffix(".") + ", and that you love them."


def script(*args) -> str:
    result = CliRunner().invoke(commands.script_command, [str(a) for a in args],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_staff_script_is_in_plain_words_with_every_word_said():
    text = script()
    flow, _ = validate.load(REPO_ROOT / "flows.yaml", REPO_ROOT / "prompts",
                            {"NSPCC_DIAL_NUMBER": "+448088005000"})
    for node in flow.nodes.values():
        for key in node.say:
            words = flow.written(flow.prompts[key]).replace("{entered}", "[the number they keyed in]")
            assert words in text, key
        assert f"`{node.id}`" not in text
    for engineering in ("text_request", "NSPCC_DIAL_NUMBER", "too many tries: ", "`", "on_fail"):
        assert engineering not in text
    assert "### 3. If a child is at immediate risk" in text
    assert "| 2 | “remove”, “removed”" in text and "To get an image taken off the internet |" in text
    assert "Only when the line is set up to put callers through to the NSPCC." in text


def test_the_staff_script_ends_with_a_block_to_sign():
    text = script()
    sign = text.split("## Sign-off", 1)[1]
    assert re.search(r"\| flows\.yaml \| [0-9a-f]{16} \| ", sign)
    assert re.search(r"\| en-GB\.yaml \| [0-9a-f]{16} \| ", sign)
    for blank in ("Checked on (date): ", "Name: ", "Role: ", "Signature: "):
        assert blank + "_" * 36 in sign
    page = script("--format", "html")
    assert "<h2>Sign-off</h2>" in page and "<p>Name: ____" in page


def test_technical_gives_the_names_in_the_files_and_the_block_to_sign():
    text = script("--technical")
    assert "### `text_request` (text request)" in text and "`NSPCC_DIAL_NUMBER`" in text
    assert "## Sign-off" in text


def _changed(tmp_path):
    """A copy of the shipped line, changed as a reviewer would need to see."""
    flows, prompts = copy_shipped(tmp_path / "new")
    flows.write_text(flows.read_text().replace(SCHOOL_KEY, SCHOOL_KEY.replace("to: school",
                                                                             "to: talk")))
    words = prompts.read_text()
    assert SAID in words
    prompts.write_text(words.replace(SAID, CHANGED).replace(
        'nspcc: "NSPCC helpline: {nspcc}, nspcc.org.uk"', 'nspcc: "NSPCC: {nspcc}, nspcc.org.uk"'))
    return flows, prompts


def test_diff_against_a_folder_says_what_callers_hear_differently(tmp_path):
    (tmp_path / "new").mkdir()
    flows, prompts = _changed(tmp_path)
    old = tmp_path / "old"
    old.mkdir()
    copy_shipped(old)
    text = script("--flows", flows, "--prompts", prompts.parent, "--diff", old)
    assert text.startswith(f"# Calm Line: what callers hear differently from {old}")
    assert ("Key 3 now goes to To talk to someone at the NSPCC, not For talking to your "
            "child's school or college") in text
    assert f"Instead of “{SAID}”, now hears “{CHANGED}”" in text
    paths = text.split("## Paths from the start", 1)[1].split("## The text", 1)[0]
    assert re.search(r"\(press 1\) For what to do now \| \d:\d\d \| \d:\d\d \| \\\+0:0[1-3] \|",
                     paths)
    assert "(press 3) For talking to your child's school or college | (gone)" not in paths
    assert "| (gone) |" in paths  # the paths through the school from the main menu
    assert "No longer: NSPCC helpline: 0808 800 5000, nspcc.org.uk" in text
    assert "Now: NSPCC: 0808 800 5000, nspcc.org.uk" in text
    assert "`" not in text and "[main]" not in text
    assert "[main]" in script("--flows", flows, "--prompts", prompts.parent, "--diff", old,
                              "--technical")


def test_diff_against_a_git_revision(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    flows, prompts = copy_shipped(repo)

    def git(*args):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "line")
    assert "Callers hear nothing different" in script("--flows", flows, "--prompts",
                                                      prompts.parent, "--diff", "HEAD")
    prompts.write_text(prompts.read_text().replace("Take care. Goodbye.", "Goodbye for now."))
    text = script("--flows", flows, "--prompts", prompts.parent, "--diff", "HEAD")
    assert "Instead of “Take care. Goodbye.”, now hears “Goodbye for now.”" in text
    html = script("--flows", flows, "--prompts", prompts.parent, "--diff", "HEAD", "--format",
                  "html")
    assert "<h2>Step by step</h2>" in html


def test_diff_against_nothing_says_so():
    result = CliRunner().invoke(commands.script_command, ["--diff", "no-such-revision-here"])
    assert result.exit_code == 1
    assert "no-such-revision-here: not a folder, and git says:" in result.output
