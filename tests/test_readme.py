"""The README's commands are the ones CI and newcomers actually run."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_ci_runs_exactly_the_readme_test_command():
    test_cmd = _bash_blocks()[1].strip()
    assert "pytest" in test_cmd and "\n" not in test_cmd
    ci_lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_cmd in ci_lines


def test_readme_first_command_generates_and_checks():
    first = _bash_blocks()[0].strip()
    assert "\n" not in first and "genuine synth" in first and "genuine data check" in first


def test_every_genuine_command_in_the_readme_parses():
    """Each `genuine ...` line of every bash block is accepted by the real parser (arguments, choices, flags)."""
    import shlex

    import pytest

    from genuine.cli import build_parser

    parser, seen = build_parser(), 0
    for block in _bash_blocks():
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part.split("#")[0])
                if words[:1] == ["torchrun"] and "genuine" in words:   # torchrun ... -m genuine train ...
                    words = words[words.index("genuine"):]
                if ">" in words:   # the shell's redirection of stdout: not the command's arguments
                    words = words[:words.index(">")]
                if not words or words[0] != "genuine" or any(w.startswith("[") or w in ("|", "...") for w in words):
                    continue   # usage lines with [optional] parts or alternatives are documentation, not commands
                try:
                    parser.parse_args(words[1:])
                except SystemExit:
                    pytest.fail(f"README command does not parse: {part.strip()}")
                seen += 1
    assert seen >= 10


def test_every_flag_the_readme_shows_exists():
    """Usage lines ([optional] parts) are not run, but every --flag they show must be an option of that command:
    a renamed or removed flag fails here instead of in a user's terminal."""
    import argparse

    from genuine.cli import build_parser

    def sub(parser, name):
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction) and name in a.choices:
                return a.choices[name]
        return None

    checked = 0
    for block in _bash_blocks():
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = part.split("#")[0].split()
                if not words or words[0] != "genuine":
                    continue
                parser = build_parser()
                for w in words[1:]:           # descend into `genuine data split`, `genuine references add`, ...
                    nxt = sub(parser, w)
                    if nxt is None:
                        break
                    parser = nxt
                known = {s for a in parser._actions for s in a.option_strings}
                for flag in re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", part.split("#")[0]):
                    assert flag in known, f"README shows {flag} for '{parser.prog}', which has no such option"
                    checked += 1
    assert checked >= 60
