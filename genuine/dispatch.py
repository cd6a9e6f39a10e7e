"""How a `genuine` subcommand runs: its module imported only when it runs (so --help is instant and the base install
works), the train extra checked first with an actionable message, and the library's errors turned into exit codes.

    s.set_defaults(func=command("export", "genuine.train.export", WHOLE_EXTRA))
"""
from __future__ import annotations

import argparse
import importlib
import sys

IMPORT_NAMES = {"scikit-learn": "sklearn"}   # distribution -> module, where the module is not the name with "_"


def extra_modules(extra: str) -> list[str]:
    """The modules an optional extra installs, read from the installed package's metadata: pyproject.toml's list is
    the one definition. Empty when the metadata cannot be read (then the import itself names what is missing)."""
    import re
    from importlib.metadata import PackageNotFoundError, requires

    try:
        reqs = requires("genuine") or []
    except PackageNotFoundError:
        return []
    out = []
    for r in reqs:
        name, _, marker = r.partition(";")
        if re.search(r"""extra\s*==\s*["']%s["']""" % re.escape(extra), marker):
            dist = re.match(r"[A-Za-z0-9._-]+", name.strip()).group(0).lower()
            out.append(IMPORT_NAMES.get(dist, dist.replace("-", "_").replace(".", "_")))
    return out


WHOLE_EXTRA = "the whole train extra"   # command(..., WHOLE_EXTRA): read from the metadata when the command runs


def count(minimum: int):
    """argparse type: an integer of at least `minimum` (a negative worker count is a usage error, exit 2)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{v} is below {minimum}")
        return v
    parse.__name__ = "count"   # argparse names the type in its messages
    return parse


def require_extra(extra: str, command: str, modules: list[str] | None = None) -> None:
    """Exit with an actionable message when an optional extra is not installed."""
    missing = []
    for m in modules or extra_modules(extra):
        try:
            importlib.import_module(m)
        except ImportError:
            missing.append(m)
    if missing:
        sys.exit(f"genuine {command} needs the '{extra}' extra (missing: {', '.join(missing)}).\n"
                 f"Install it with:  pip install 'genuine[{extra}]'   (from a clone: pip install -e '.[{extra}]')")


def command(name: str, module: str, extra: list[str] | str | None = None):
    """A handler importing `module` only when `genuine NAME` runs (so --help is instant and the base install
    works); `extra` lists the train-extra modules it needs (WHOLE_EXTRA: all of them). The library raises, never
    exits: a GenuineError becomes its message and exit 2, anything else is a bug and keeps its traceback."""
    def run(args) -> int:
        from genuine.infer.errors import GenuineError

        if extra is not None:
            require_extra("train", name, None if extra == WHOLE_EXTRA else extra)
        main = importlib.import_module(module).main
        try:
            return main(args)
        except GenuineError as e:
            print(f"genuine {name}: {e}", file=sys.stderr)
            return 2
    return run
