"""``genrl models``: the trained MFWMs shipped with the package (see :mod:`genrl.mfwm.shipped`).

Usage::

    genrl models                                   # name, domain, updates, held-out metrics of each shipped model
    genrl models export runs/walker_mfwm --name walker --card card.json   # pack a run (fp16) into the package
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers) -> None:
    """Register ``models`` (list) and ``models export``."""
    p = subparsers.add_parser("models", help="list the shipped pre-trained MFWMs (usable by name wherever a "
                              "pre-training run is taken), or export a run as one")
    sub = p.add_subparsers(dest="models_command")
    e = sub.add_parser("export", help="pack a pre-training run's latest weights (float16) as a shipped model")
    e.add_argument("run", help="pre-training run folder (or one of its snapshots/step_N)")
    e.add_argument("--name", required=True, help="model name, e.g. walker")
    e.add_argument("--card", default=None, help="JSON file of model-card fields (data, command, metrics, scores)")
    e.add_argument("--readme", default=None, help="Markdown model card for README.md (default: the card as JSON)")
    e.add_argument("--out-root", default=None, help="folder receiving NAME/ (default: the package's mfwm/weights)")
    p.set_defaults(func=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    from genrl.mfwm.shipped import export_model, read_card, shipped_models

    if getattr(args, "models_command", None) == "export":
        card = {}
        if args.card:
            try:
                card = json.loads(Path(args.card).read_text())
            except json.JSONDecodeError as exc:
                raise ValueError(f"--card {args.card}: not valid JSON ({exc})") from exc
        readme = Path(args.readme).read_text() if args.readme else None
        folder = export_model(args.run, args.name, card, out_root=args.out_root, readme=readme)
        print(json.dumps({"name": args.name, "folder": str(folder)}))
        return 0
    models = shipped_models()
    if not models:
        print("no shipped models")
        return 0
    for name in models:
        card = read_card(name)
        print(json.dumps({k: card.get(k) for k in ("name", "domain", "step", "preset", "dtype", "data",
                                                   "heldout", "scores") if k in card}))
    return 0
