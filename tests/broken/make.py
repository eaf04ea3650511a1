"""Make tests/broken/: the shipped flow and prompts, each copy with one mistake.

Each folder is a copy of flows.yaml and prompts/en-GB.yaml with one mistake,
named after the code `ivr check` gives it. A comment `# expect: CODE` marks
each line where `ivr check` must report CODE (tests/test_checks.py holds it to
that, exactly, for errors). Run this again after the shipped files change:

    .venv/bin/python tests/broken/make.py
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FLOWS = "flows.yaml"
PROMPTS = "prompts/en-GB.yaml"
POLISH = "prompts/pl-PL.yaml"  # copied only into the cases that edit it (issue 18)

def _school_urgent_choice() -> str:
    """The school menu's key 9 choice, from "choices:" to the next key (examples and all)."""
    text = (REPO / FLOWS).read_text()
    start = text.index("    choices:\n", text.index("\n  school:\n"))
    return text[start:text.index('      - key: "4"', start)] + '      - key: "4"'


def _school_choices_swapped() -> tuple[str, str]:
    """(the school menu's two choices, the same with key 9 second)."""
    text = (REPO / FLOWS).read_text()
    start = text.index('      - key: "9"', text.index("\n  school:\n"))
    middle = text.index('      - key: "4"', start)
    end = text.index("\n\n", middle) + 1
    urgent = text[start:middle].replace('- key: "9"\n', '- key: "9"  # expect: E033\n', 1)
    return text[start:end], text[middle:end] + urgent


# case -> [(file, anchor, old, new)]: after the first `anchor` (or from the
# top), the first `old` becomes `new`; old "" appends new at the end.
CASES: dict[str, list[tuple[str, str | None, str, str]]] = {
    "E001-yaml-syntax": [
        (FLOWS, None, "home: main ", "home: main: menu  # expect: E001\n"),
    ],
    "E002-duplicate-key": [
        (FLOWS, "  welcome:\n", "    next: main\n",
         "    next: main\n    next: steps  # expect: E002\n"),
    ],
    "E010-schema": [
        (FLOWS, "  school:\n", '      - key: "4"\n', "      - key: 4  # expect: E010\n"),
    ],
    "E012-prompts-schema": [
        (PROMPTS, None, '  goodbye.bye: "Take care. Goodbye."\n',
         '  goodbye.bye:  # expect: E012\n'),
    ],
    "E020-unknown-step": [
        (FLOWS, "  dial_failed:\n", "    next: talk\n", "    next: tlak  # expect: E020\n"),
    ],
    "E021-missing-prompt": [
        (FLOWS, "  school:\n", "school.image,", "school.imagery,  # expect: E021\n         "),
        (PROMPTS, "  school.image:", ' or show it to them."\n', ' or show it to them."  # expect: W001\n'),
    ],
    "E022-key-twice": [
        (FLOWS, "  school:\n", '      - key: "4"\n        to: talk\n        prompt: menu.talk\n',
         '      - key: "9"  # expect: E022\n        to: talk\n'
         '        prompt: menu.talk  # expect: E035\n'),
    ],
    "E023-no-urgent-key": [
        (FLOWS, "  school:\n", _school_urgent_choice(), "    choices:\n      - key: \"4\"  # expect: E023"),
    ],
    "E024-unreachable": [
        (FLOWS, None, "\n# How the line understands",
         "\n  old_goodbye:\n    type: goodbye  # expect: E024\n    say: [goodbye.bye]\n"
         "\n# How the line understands"),
    ],
    "E025-unknown-link": [
        (FLOWS, "  talk:\n", "    links: [nspcc]\n", "    links: [nspc]  # expect: E025\n"),
    ],
    "E026-unknown-placeholder": [
        (PROMPTS, None, '  talk.number: "The NSPCC helpline is {nspcc}.',
         '  talk.number: "The NSPCC helpline is {nspc}."  # expect: E026\n  talk.old: "'),
        (PROMPTS, "rests_on:\n", "  talk.number:", "  talk.old: [navigation]\n  talk.number:"),
    ],
    "E027-dead-end": [
        (FLOWS, "  dial_failed:\n", "    type: message\n", "    type: message  # expect: E027\n"),
        (FLOWS, "  dial_failed:\n", "    next: talk\n", ""),
    ],
    "E028-loop": [
        (FLOWS, "  main:\n", "        to: talk\n        prompt: main.talk\n",
         "        to: talk_intro\n        prompt: main.talk\n"),
        (FLOWS, None, "\n# How the line understands",
         "\n  talk_intro:\n    type: message  # expect: E028\n    say: [talk.nspcc]\n"
         "    next: talk_again\n\n  talk_again:\n    type: message\n    say: [talk.number]\n"
         "    next: talk_intro\n\n# How the line understands"),
    ],
    "E029-phrase-twice": [
        (FLOWS, "  main:\n", "        phrases: [talk, someone, nspcc, helpline, speak to someone, number]\n",
         "        phrases: [talk, someone, nspcc, helpline, advice]  # expect: E029\n"),
    ],
    "E030-999-late": [
        (FLOWS, "  welcome:\n",
         "    say: [welcome.danger, welcome.for_whom, welcome.calm, welcome.told,\n"
         "          welcome.image, welcome.help_now]\n",
         "    say: [welcome.for_whom, welcome.calm, welcome.told,\n"
         "          welcome.danger, welcome.image, welcome.help_now]  # expect: E030\n"),
    ],
    "E031-number-not-allowed": [
        (PROMPTS, None, '  childline: "0800 1111"\n', '  childline: "0800 1112"  # expect: E031, E050\n'),
    ],
    "E032-number-in-words": [
        (PROMPTS, None, '  talk.number: "The NSPCC helpline is {nspcc}.',
         '  talk.number: "The NSPCC helpline is 0808 800 5000."  # expect: E032\n  talk.old: "'),
        (PROMPTS, "rests_on:\n", "  talk.number:", "  talk.old: [navigation]\n  talk.number:"),
    ],
    "E033-urgent-not-first": [
        (FLOWS, "  school:\n", *_school_choices_swapped()),
    ],
    "E034-safety-without-nspcc": [
        (PROMPTS, "\nsafety:\n", '  - "Sorry, something has gone wrong with this line."\n',
         '  - "Sorry, something has gone wrong with this line."  # expect: E034\n'),
        (PROMPTS, "\nsafety:\n",
         '  - "For advice, call the NSPCC on {nspcc}. Again, that is {nspcc}."\n', ""),
    ],
    "E035-press-wrong-key": [
        (PROMPTS, None, "press 3, or say school.", "press 5, or say school."),
        (FLOWS, "  main:\n", "        prompt: main.school\n",
         "        prompt: main.school  # expect: E035\n"),
    ],
    "E036-say-unheard": [
        (PROMPTS, None, "press 4, or say talk.", "press 4, or say chat."),
        (FLOWS, "  main:\n", "        prompt: main.talk\n", "        prompt: main.talk  # expect: E036\n"),
    ],
    "E037-phrase-punctuation": [
        (FLOWS, "  main:\n", "        phrases: [school, college, teacher]\n",
         "        phrases: [school, college, teacher, head-teacher]  # expect: E037\n"),
    ],
    "E038-link-not-https": [
        (PROMPTS, None, '    url: "https://www.iwf.org.uk/report"\n',
         '    url: "http://www.iwf.org.uk/report"  # expect: E038, E050\n'),
    ],
    "E039-address-not-allowed": [
        (PROMPTS, None, 'Call Calm Line for advice. NSPCC: {nspcc}. In danger? Call {emergency}."\n',
         'Call Calm Line for advice, or see calmline.org.uk. NSPCC: {nspcc}. '
         'In danger? Call {emergency}."  # expect: E039\n'),
    ],
    "E040-not-gsm7": [
        (PROMPTS, None, '    label: "Parent Info"\n', '    label: "Parent Info ✔"  # expect: E040\n'),
    ],
    "E041-text-too-long": [
        (PROMPTS, None, '    label: "Report to the IWF"\n',
         '    label: "' + "Report it to the Internet Watch Foundation, the IWF. " * 8 + '"\n'),
        (FLOWS, "  removal_more:\n", "    links: [iwf_report]\n",
         "    links: [iwf_report]  # expect: E041\n"),
    ],
    "E042-spoken-key": [
        (FLOWS, None, '  nine: "9"\n', '  nine: "8"  # expect: E042\n'),
    ],
    "E050-no-source": [
        (PROMPTS, "rests_on:\n", "  welcome.calm: [stay_calm]\n",
         "  welcome.calm: [keep_calm_and_carry_on]  # expect: E050\n"),
    ],
    "E045-text-lacks-a-number": [
        (PROMPTS, None, '  number_childline: "Childline, free for your child, day or night: {childline}"\n',
         ''),
        (PROMPTS, "rests_on:\n", "  sms.number_childline: [childline_any_time]\n", ""),
        # The first step, in flow order, that says {childline} and gives links.
        (FLOWS, "  urgent_more:\n", "    links: [ceop]\n", "    links: [ceop]  # expect: E045\n"),
    ],
    "E046-hours-unreadable": [
        (FLOWS, "  dial_nspcc:\n", "    hours: {}\n",
         '    hours:\n      weekly:\n        monday: ["9-5"]  # expect: E046\n'),
    ],
    "E044-example-elsewhere": [
        (FLOWS, "  main:\n", "          - the school\n",
         "          - the school\n          - the school says he is being blackmailed  # expect: E044\n"),
    ],
    "E047-language-missing-key": [
        (POLISH, "\nprompts:\n", '  goodbye.bye: "Trzymaj się. Do widzenia."\n', ""),
        (POLISH, "\nprompts:\n", 'naciśnij 7."\n', 'naciśnij 7."  # expect: E047\n'),
    ],
    "E048-language-key-used": [
        (POLISH, None, '  key: "7"', '  key: "4"  # expect: E048\n  #'),
    ],
    # The Polish offer (issue 18): its 999 sentence and its key within the first 25 words
    # heard in Polish, and the same 999 sentence as at key 9 and in the Polish welcome.
    "E030-language-999-late": [
        (POLISH, "\nlanguage:\n", "  offer: [urgent.call_999, language.choose]\n",
         "  offer: [language.choose, welcome.for_whom, urgent.call_999]  # expect: E030\n"),
    ],
    "E030-language-key-late": [
        (POLISH, "\nlanguage:\n", "  offer: [urgent.call_999, language.choose]\n",
         "  offer: [urgent.call_999, welcome.for_whom, language.choose]  # expect: E030\n"),
    ],
    "E049-language-999-differs": [
        (POLISH, "\nlanguage:\n", "  offer: [urgent.call_999, language.choose]\n",
         "  offer: [language.danger, language.choose]  # expect: E049\n"),
        (POLISH, "\nprompts:\n", '  language.choose: "Po polsku: naciśnij 7."\n',
         '  language.choose: "Po polsku: naciśnij 7."\n'
         '  language.danger: "Niebezpieczeństwo? Dzwoń pod {emergency}."\n'),
        (POLISH, "\nprompts:\n", '  welcome.danger: "To jest Calm Line. Jeśli dziecko jest w '
         'bezpośrednim niebezpieczeństwie, rozłącz się teraz i zadzwoń pod {emergency}."\n',
         '  welcome.danger: "To jest Calm Line. Gdy dziecku grozi niebezpieczeństwo, rozłącz się '
         'i dzwoń pod {emergency}."  # expect: E049\n'),
    ],
    # The first language's checks on the words, run on Polish too (with its own words for
    # "press", "say" and "or", and its examples), each at its line in prompts/pl-PL.yaml.
    "E035-polish-press-wrong-key": [
        (POLISH, "\nprompts:\n", '  main.steps: "Co robić teraz: naciśnij 1 albo powiedz: kroki."\n',
         '  main.steps: "Co robić teraz: naciśnij 2 albo powiedz: kroki."  # expect: E035\n'),
    ],
    "E036-polish-say-unheard": [
        (POLISH, "\nprompts:\n", '  main.steps: "Co robić teraz: naciśnij 1 albo powiedz: kroki."\n',
         '  main.steps: "Co robić teraz: naciśnij 1 albo powiedz: porady."  # expect: E036\n'),
    ],
    "E043-polish-long-sentence": [
        (POLISH, "\nprompts:\n", '  school.tell: "Opowiedz, co się stało i co już zostało zrobione."\n',
         '  school.tell: "Opowiedz spokojnie, co się stało, kiedy to było, kto o tym wie, co już '
         'zostało zrobione, czego się boisz i jakiej pomocy dziecko chciałoby teraz od szkoły."'
         '  # expect: E043\n'),
    ],
    "E044-polish-example-elsewhere": [
        (POLISH, "\n  menus:\n", "      removal:\n        - usunięcie\n",
         "      removal:\n        - usunięcie\n        - szantaż w internecie  # expect: E044\n"),
    ],
    "E029-polish-phrase-is-a-key": [
        (POLISH, "\n  nav:\n", "    home:\n      - menu\n",
         "    home:\n      - jeden  # expect: E029, E044\n      - menu\n"),
    ],
    "E037-polish-phrase-punctuation": [
        (POLISH, "\n  nav:\n", "    repeat:\n      - powtórz\n",
         "    repeat:\n      - powtórz!  # expect: E037\n"),
    ],
    "W007-language-draft": [
        (POLISH, "\nlanguage:\n", "  name: Polski\n", "  name: Polski  # expect: W007\n"),
    ],
    "W005-few-examples": [
        (FLOWS, "  school:\n", '      - key: "4"\n',
         '      - key: "3"\n        to: steps\n        phrases: [steps]\n'
         '        examples: [what to do, the steps]  # expect: W005\n      - key: "4"\n'),
    ],
    "W001-unused-prompt": [
        (PROMPTS, None, '  welcome.for_whom:',
         '  welcome.old: "Welcome to Calm Line."  # expect: W001, E050\n  welcome.for_whom:'),
    ],
    "W002-long-step": [
        (FLOWS, "  school:\n",
         "    say: [school.speak, school.dsl, school.tell, school.image, school.spread,\n",
         "    say: [school.speak, school.dsl, school.tell, school.image, school.spread,  # expect: W002\n"
         "          talk.nspcc, talk.number, talk.web,\n"),
    ],
    "E043-long-sentence": [
        (PROMPTS, None,
         '  school.tell: "Tell them what has happened, and what you have done so far."\n',
         '  school.tell: "You can tell them what has happened, what you have done so far, who else '
         'knows about it, and what help your child would like from them now."  # expect: E043\n'),
    ],
    "W004-many-choices": [
        (FLOWS, "  main:\n", '    choices:\n      - key: "9"\n',
         '    choices:\n      - key: "9"  # expect: W004\n'),
        (FLOWS, "  main:\n", "\n\n  # The urgent branch:",
         '\n      - key: "5"\n        to: finish\n        phrases: [text me]\n\n  # The urgent branch:'),
    ],
    "W006-first-key-late": [
        (PROMPTS, None, 'hang up now and call {emergency}."',
         'hang up now and call {emergency}, the emergency number, straight away, please, do not wait."'),
        (FLOWS, None, "    say: [welcome.danger, welcome.for_whom, welcome.calm, welcome.told,\n",
         "    say: [welcome.danger, welcome.for_whom, welcome.calm, welcome.told,  # expect: W006\n"),
    ],
}


def _apply(text: str, anchor: str | None, old: str, new: str, where: str) -> str:
    if old == "":
        return text.rstrip("\n") + "\n" + new
    start = text.index(anchor) if anchor else 0
    at = text.find(old, start)
    if at < 0:
        raise SystemExit(f"{where}: {old!r} is not in the shipped file any more: update make.py")
    return text[:at] + new + text[at + len(old):]


def make(out: Path = HERE) -> list[Path]:
    shipped = {name: (REPO / name).read_text(encoding="utf-8") for name in (FLOWS, PROMPTS, POLISH)}
    made = []
    for case, edits in CASES.items():
        texts = {name: shipped[name] for name in (FLOWS, PROMPTS)}
        if any(name == POLISH for name, *_ in edits):
            texts[POLISH] = shipped[POLISH]
        for name, anchor, old, new in edits:
            texts[name] = _apply(texts[name], anchor, old, new, f"{case}/{name}")
        made.append(_write(out / case, texts))
    shipped.pop(POLISH)
    # Two mistakes no edit of the shipped text can make:
    texts = dict(shipped)  # E000: the prompts saved in another encoding than UTF-8
    texts[PROMPTS] = "# expect: E000 (saved as Latin-1, not UTF-8: £)\n" + shipped[PROMPTS]
    made.append(_write(out / "E000-not-utf8", texts, encoding={PROMPTS: "latin-1"}))
    texts = dict(shipped)  # E011: a prompts file that is a list, not a mapping
    texts[PROMPTS] = "# The words, by key (a mapping), but written as a list:\n" \
                     '- welcome.danger: "This is Calm Line."  # expect: E011\n'
    made.append(_write(out / "E011-prompts-not-mapping", texts))
    return made


def _write(folder: Path, texts: dict, encoding: dict | None = None) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    for name, text in texts.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode((encoding or {}).get(name, "utf-8")))
    return folder


if __name__ == "__main__":
    for folder in make():
        print(folder.relative_to(REPO))
    sys.exit(0)
