"""Meta-train an agent on a task family (``metarl-train``, ``python train.py``).

    python train.py                                   # MAML-TRPO on 2D navigation (defaults)
    python train.py --config maml_trpo_halfcheetah_vel meta_iterations=50 seed=3
    python train.py --help                            # every config key: type, default, doc
    python train.py --debug ...                       # errors with their tracebacks
    python train.py --resume runs/<run>               # continue a stopped run
    python train.py --resume runs/<run> meta_iterations=200   # ... and extend it
    python train.py --config <preset> init_from=runs/<run> outer_lr=3e-4   # fine-tune a run

--config takes a preset name (configs/<name>.yaml) or a YAML file. Writes
``runs/<env>__<agent>__<seed>__<time>/``: config.yaml, TensorBoard events, progress.csv and
checkpoints/.
"""

from __future__ import annotations

import difflib
import re
import signal
import sys
import time
from argparse import ArgumentError, RawDescriptionHelpFormatter
from pathlib import Path
from typing import Any

from jsonargparse import ArgumentParser, DefaultHelpFormatter, Namespace

from metarl.checkpoint import CheckpointError, latest_checkpoint
from metarl.cli import errors
from metarl.config import SECTIONS, ConfigError, field_names, load_config
from metarl.training import DivergedError, resume, run_name, train


class Terminated(Exception):
    """Raised in the main thread when the process receives SIGTERM."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


OPTIONS_WITH_VALUES = ("--config", "--resume", "--run-dir")


class HelpFormatter(DefaultHelpFormatter, RawDescriptionHelpFormatter):
    """Each key's type and default after its doc; the description as written."""


OVERRIDE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)


def make_parser() -> ArgumentParser:
    """The command line: options, then every config key by section with its type, default
    and doc (jsonargparse reads them off the section dataclasses)."""
    parser = ArgumentParser(
        prog="train.py",
        usage="train.py [--config PRESET | --resume RUN_DIR] [--run-dir DIR] [--no-progress] [key=value ...]",
        description=__doc__,
        exit_on_error=False,
        formatter_class=HelpFormatter,
        epilog="Config keys are given as key=value (values parsed as YAML), e.g. hidden_sizes=[32,32].",
    )
    parser.add_argument("--config", help="a preset name (configs/<name>.yaml) or a YAML file")
    parser.add_argument(
        "--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint"
    )
    parser.add_argument("--run-dir", help="write the run here instead of runs/<generated name>")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(errors.DEBUG_FLAG, action="store_true", help=errors.DEBUG_HELP)
    for section in SECTIONS.values():
        parser.add_class_arguments(section)
    return parser


def parse(argv: list[str]) -> tuple[Namespace, dict[str, Any]]:
    """(options, config overrides) of a command line; ConfigError on a malformed one.

    ``key=value`` overrides become jsonargparse's ``--key=value``, which types the value
    against the config's declared type."""
    names, translated = field_names(), []
    for index, token in enumerate(argv):
        if token.startswith("-") or (index and argv[index - 1] in OPTIONS_WITH_VALUES):
            translated.append(token)
            continue
        match = OVERRIDE.match(token)
        if match is None:
            raise ConfigError(f"override {token!r} is not of the form key=value")
        if match.group(1) not in names:
            close = difflib.get_close_matches(match.group(1), names, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(
                f"unknown config key {match.group(1)!r} in the overrides{hint}; see train.py --help"
            )
        translated.append(f"--{token}")
    try:
        options = make_parser().parse_args(translated, defaults=False)
    except ArgumentError as err:
        message = re.sub(r"<class '(\w+)'>", r"\1", " ".join(str(err).split()))
        raise ConfigError(f"in the overrides: {message}") from err
    overrides = {key: options[key] for key in names if key in options}
    return options, overrides


def main(argv: list[str] | None = None) -> int:
    return errors.run(_main, argv)


def saved_progress(run_dir: Path) -> str:
    """What a stopped run left, as a clause: its latest checkpoint and how to resume, or that
    nothing was saved."""
    try:
        latest = latest_checkpoint(run_dir / "checkpoints")
    except CheckpointError:
        return f"nothing was saved in {run_dir} (no iteration had completed): start it again"
    return f"{latest} is saved: resume with python train.py --resume {run_dir}"


def _main(argv: list[str], debug: bool) -> int:
    if any(token in ("-h", "--help") for token in argv):
        make_parser().print_help()
        return 0
    args, overrides = parse(argv)
    if args.get("resume"):
        if args.get("config"):
            raise ConfigError("--resume uses the run's own config; --config cannot be combined with it")
        state, config, run_dir = resume(Path(args.resume), overrides)
    else:
        config = load_config(args.get("config"), overrides)
        state = None
        run_dir = Path(args.run_dir) if args.get("run_dir") else Path(config.run_root) / run_name(config)
    print(f"run directory: {run_dir}")
    start = time.perf_counter()
    # SIGTERM (kill, a scheduler's preemption) stops the run as Ctrl-C does: `train` saves
    # the last completed iteration on the way out.
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        train(config, run_dir, state, progress=not args.get("no_progress"))
    except (KeyboardInterrupt, Terminated) as stop:
        print(
            f"\n{'terminated' if isinstance(stop, Terminated) else 'interrupted'}; {saved_progress(run_dir)}",
            file=sys.stderr,
        )
        return 143 if isinstance(stop, Terminated) else 130
    except (CheckpointError, DivergedError):  # init_from does not fit; the error says what to do
        raise
    except Exception as err:
        return errors.report(err, debug, saved_progress(run_dir))
    print(f"done in {time.perf_counter() - start:.1f} s; evaluate with: python evaluate.py {run_dir}")
    print(f"watch with: tensorboard --logdir {run_dir.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
