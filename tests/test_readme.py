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
                if not words or words[0] != "genuine" or any(w.startswith("[") or w in ("|", "...") for w in words):
                    continue   # usage lines with [optional] parts or alternatives are documentation, not commands
                try:
                    parser.parse_args(words[1:])
                except SystemExit:
                    pytest.fail(f"README command does not parse: {part.strip()}")
                seen += 1
    assert seen >= 10
