"""The `longrag` command's entry point. Loading torch and transformers takes seconds; Ctrl-C in
that time exits quietly with status 130 instead of printing a traceback, so the command's own
modules are imported here, inside the guard (the one place longrag imports inside a function)."""
from __future__ import annotations

import sys


def main() -> None:
    try:
        from .cli import main as cli
    except KeyboardInterrupt:
        print("interrupted: nothing was changed", file=sys.stderr)
        sys.exit(130)
    cli()
