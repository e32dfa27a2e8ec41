"""How the command lines end: one line on stderr per error or warning, and exit codes.

Exit codes: 0 done; 2 bad input (a config key or value, an option, a preset, a checkpoint
given that does not load); 1 a failure at run time (training diverged, a file could not be
written, a sampler worker failed, anything unexpected); 130 / 143 interrupted by Ctrl-C /
SIGTERM. A traceback is printed only with ``--debug`` or the environment variable
``METARL_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from collections.abc import Callable

from tqdm import tqdm

from metarl.checkpoint import CheckpointError, RunWriteError
from metarl.config import ConfigError
from metarl.optim import NonFiniteError
from metarl.sampling import SamplerError
from metarl.training import DivergedError

BAD_INPUT = (ConfigError, CheckpointError)
# errors whose message says all there is to say; any other error is named by its type too
OURS = (*BAD_INPUT, RunWriteError, DivergedError, SamplerError, NonFiniteError)
DEBUG_FLAG = "--debug"
DEBUG_HELP = "print tracebacks of errors (also: the environment variable METARL_DEBUG=1)"


def debugging(argv: list[str]) -> bool:
    return DEBUG_FLAG in argv or os.environ.get("METARL_DEBUG", "") not in ("", "0")


def one_line(err: BaseException) -> str:
    """The first line of an error's message (a worker's traceback follows on later lines)."""
    lines = str(err).strip().splitlines()
    message = lines[0] if lines else ""
    return message if isinstance(err, OURS) else f"{type(err).__name__}: {message}".rstrip(": ")


def report(err: BaseException, debug: bool, hint: str = "") -> int:
    """Print `err` as one line (after its traceback if `debug`); its exit code."""
    if debug:
        traceback.print_exception(err)
    print(f"error: {one_line(err)}{'; ' + hint if hint else ''}", file=sys.stderr)
    return 2 if isinstance(err, BAD_INPUT) else 1


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    tqdm.write(f"warning: {' '.join(str(message).split())}", file=sys.stderr)


def run(main: Callable[[list[str], bool], int], argv: list[str] | None) -> int:
    """`main(argv, debug)` with warnings as one line each and any error it raises reported by
    `report`; ``--debug`` is taken out of argv."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = debugging(argv)
    argv = [token for token in argv if token != DEBUG_FLAG]
    with warnings.catch_warnings():
        if not debug:
            warnings.showwarning = _one_line_warning
        try:
            return main(argv, debug)
        except Exception as err:
            return report(err, debug)


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad option is a `ConfigError` (one line, exit code 2), not usage text."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"{message}; see {self.prog} --help")
