"""The ``genrl`` command: one subcommand per pipeline stage.

Stages so far: ``genrl envs`` (environments), ``genrl experts`` (state-based experts for data collection),
``genrl collect`` and ``genrl data`` (offline datasets),
``genrl vlm`` and ``genrl embed`` (video-language models),
``genrl pretrain``, ``genrl pretrain-eval``, ``genrl decode`` and ``genrl import-official`` (the
multimodal-foundation world model; the last converts official snapshots),
``genrl models`` (trained MFWMs shipped with the package, usable by name),
``genrl behave`` and ``genrl eval`` (behaviors from prompts), ``genrl baseline`` and ``genrl compare`` (offline RL
baselines and the paper's table), ``genrl reward-check`` (which reward ranks real
behavior right), ``genrl demo`` (everything end to end), ``genrl app`` (a local dashboard in the browser).
Run ``genrl --help`` or ``genrl envs --help``.
"""

from __future__ import annotations

import argparse
import os
import sys
import typing

from genrl import __version__
from genrl.app import (app_cmd, baselines_cmd, behavior_cmd, collect_cmd, data_cmd, demo_cmd, envs_cmd,
                       evaluation_cmd, experts_cmd, mfwm_cmd, models_cmd, vlm_cmd)

STAGES = (envs_cmd, experts_cmd, collect_cmd, data_cmd, vlm_cmd, mfwm_cmd, models_cmd, behavior_cmd,
          baselines_cmd, evaluation_cmd, demo_cmd, app_cmd)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``error: genrl behave: argument --steps: expects int, got 'abc' (...)`` on
    stderr and exit code 2, the convention of every ``genrl`` error (no usage block, no traceback). Subcommand
    parsers are of this class too."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (`{self.prog} --help` lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every stage's subcommand registered."""
    parser = Parser(prog="genrl", description="GenRL: multimodal-foundation world models for generalist embodied "
                    "agents. The training commands (pretrain, behave, baseline, vlm train, demo, experts train) "
                    "take --print-config: the resolved config as JSON, nothing run or written.")
    parser.add_argument("--version", action="version", version=f"genrl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for stage in STAGES:
        stage.add_parser(sub)
    return parser


# Errors that mean "bad input" (unknown task, wrong dataset, missing file...): printed as one line, exit code 2.
# Set GENRL_DEBUG=1 to get the traceback instead.
USER_ERRORS = (ValueError, KeyError, FileNotFoundError)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``genrl`` console script. Returns the process exit code (2 for bad input)."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `--nproc N` re-runs the command under torchrun
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as err:
        if os.environ.get("GENRL_DEBUG"):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
