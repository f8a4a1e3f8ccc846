"""``genrl app``: the local dashboard in the browser (:mod:`genrl.app.dashboard`; needs the ``app`` extra).

Usage::

    pip install -e ".[app]"                          # gradio
    genrl app                                        # shipped models, behavior runs under ./runs
    genrl app runs/walker_mfwm runs/behaviors --port 7860 [--dataset runs/data/walker] [--vlm ...]

Then open the printed address (``http://127.0.0.1:7860``). Nothing leaves the machine: no share link, no analytics.
"""

from __future__ import annotations

import argparse
import sys

from genrl.app.vlm_cmd import _add_vlm_args

INSTALL_HINT = 'genrl app needs gradio: install the app extra (pip install -e ".[app]")'


def add_parser(subparsers) -> None:
    """Register ``app``."""
    p = subparsers.add_parser("app", help="local dashboard in the browser: prompt -> decoded target -> behaviors")
    p.add_argument("runs", nargs="*", metavar="RUN",
                   help="pre-training runs or shipped model names (world models to pick), and folders of behavior "
                   "runs / results (the first one is listed; default: runs)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=None, help="port (default: the first free one from 7860)")
    p.add_argument("--dataset", default=None, help="dataset searched for the nearest clips (default: the model's)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads of behave jobs started from the page")
    _add_vlm_args(p)
    p.set_defaults(func=cmd_app)


def _vlm_cli_args(args: argparse.Namespace) -> list[str]:
    """The ``--vlm ...`` options again, for the ``genrl behave`` jobs started from the page."""
    out = ["--vlm", args.vlm]
    for flag, value in (("--vlm-path", args.vlm_path), ("--checkpoint", args.checkpoint),
                        ("--n-frames", args.n_frames)):
        if value is not None:
            out += [flag, str(value)]
    return out + (["--threads", str(args.threads)] if args.threads else [])


def cmd_app(args: argparse.Namespace) -> int:
    try:
        from genrl.app.dashboard import import_gradio

        import_gradio()
    except ImportError:
        print(f"error: {INSTALL_HINT}", file=sys.stderr)
        return 2
    from genrl.app.dashboard import launch
    from genrl.app.dashboard_core import Dashboard
    from genrl.app.vlm_cmd import embedder_from_args

    dash = Dashboard(args.runs, embedder=lambda: embedder_from_args(args), dataset=args.dataset,
                     behave_args=_vlm_cli_args(args))
    launch(dash, host=args.host, port=args.port)
    return 0
