"""The lemma dictionaries stay small: simplemma's MARISA tries, cached once per machine
outside the repo, built by one process when several start at once; a built app holds
well under the ~480 MB the default dictionaries cost (docs/understanding.md, "Memory")."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

from simplemma.strategies.dictionaries import DefaultDictionaryFactory, TrieDictionaryFactory

from ivr.config import REPO_ROOT

# The module, not the function of that name the package exports.
normalise = importlib.import_module("ivr.call.understanding.normalise")

RSS_LIMIT_MB = 250  # measured ~120 MB with the tries, ~480 MB with simplemma's default dicts

BUILT_APP = """
import tempfile
from ivr import create_app
folder = tempfile.mkdtemp()
create_app({"TESTING": True, "SECRET_KEY": "test-secret", "TWILIO_AUTH_TOKEN": "test-token",
            "INSTANCE_PATH": folder + "/instance", "DATABASE_URL": f"sqlite:///{folder}/db.sqlite"})
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmRSS:")))
"""

ONE_LEMMA = """
import logging
logging.basicConfig(level=logging.INFO, format="%(message)s")
from ivr.call.understanding.normalise import lemma
print(lemma("threatening"))
"""


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
                          capture_output=True, text=True, check=True)


def test_the_lemmatizer_reads_marisa_tries_not_the_default_dicts():
    assert type(normalise.DICTIONARIES) is TrieDictionaryFactory
    # simplemma's own attributes: if a new version moves them, this should fail and be looked at.
    lookup = normalise.LEMMATIZER._lemmatization_strategy._dictionary_lookup
    assert lookup._dictionary_factory is normalise.DICTIONARIES
    normalise.warm()
    assert type(normalise.DICTIONARIES.get_dictionary("en")).__name__ == "TrieWrapDict"
    assert normalise.lemma("threatening") == "threaten"


def test_every_english_entry_of_the_trie_is_the_default_dictionarys():
    """The same lemmas, not only a smaller store (Polish was compared the same way, all
    3.7 million entries, when the tries were chosen: too slow to repeat in every run)."""
    normalise.warm()
    trie = normalise.DICTIONARIES.get_dictionary("en")
    default = DefaultDictionaryFactory().get_dictionary("en")
    assert len(trie) == len(default) > 100_000
    assert not [key for key, value in default.items() if trie.get(key) != value][:10]


def test_a_built_app_holds_well_under_the_default_dictionaries_memory():
    rss_mb = int(_python(BUILT_APP).stdout.split()[-1]) / 1024
    assert rss_mb < RSS_LIMIT_MB, f"{rss_mb:.0f} MB after create_app (limit {RSS_LIMIT_MB})"


def test_the_cache_is_outside_the_repo():
    assert not normalise.CACHE.resolve().is_relative_to(REPO_ROOT.resolve())


def test_two_processes_starting_at_once_on_a_fresh_machine_build_the_trie_once(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    command = [sys.executable, "-c", textwrap.dedent(ONE_LEMMA)]
    started = [subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT),
                                                             **env},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [process.communicate() for process in started]
    assert [process.returncode for process in started] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == ["threaten", "threaten"]
    builds = [line for _, err in outputs for line in err.splitlines() if "building the en lemma" in line]
    assert len(builds) == 1, outputs  # the other waited for it, then read the same file
    (folder,) = (tmp_path / "calm-line" / "lemmas").iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["en.dic", "en.lock"]  # no half-built leftovers
    # A third start reads the cache and builds nothing.
    assert "building" not in _python(ONE_LEMMA, **env).stderr
