"""``genrl baseline`` and ``genrl compare``: VLM-reward offline RL baselines and the paper's comparison table.

Usage::

    genrl embed runs/data/walker --vlm default            # once per dataset and VLM (video reward embeddings)
    genrl baseline --algo iql --reward video --task walker_walk --dataset runs/data/walker --out runs/bl/iql_v_s0
    genrl baseline --algo td3bc --reward image --task walker_walk --dataset runs/data/walker --out ... --seed 1
    genrl baseline --algo iql --reward video --task walker_walk --dataset D --out R --print-config   # nothing runs
    genrl compare runs/bl runs/genrl --out table.md       # Markdown + table.csv; paper numbers in brackets
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from genrl.app.config_args import add_config_args, add_print_config, config_from_args, print_config
from genrl.app.overrides import add_set_arg, eval_workers_arg, parse_overrides
from genrl.baselines.config import AgentConfig, BaselineConfig, make_config


def add_parser(subparsers) -> None:
    """Register ``baseline`` and ``compare``."""
    from genrl.vlm.registry import NAMES

    p = subparsers.add_parser(
        "baseline", help="train + evaluate IQL / TD3+BC / TD3 on pixels with a VLM reward (resumable)",
        description="Model-free offline RL from pixels (64x64, frame stack 3, DrQ-v2 encoder, LayerNorm MLPs) "
        "with an image-language (cosine of the prompt and the current frame) or video-language (cosine of the "
        "prompt and the clip of the last k frames) reward; paper section 4.1 / appendix D. The paper trains "
        "500k gradient steps on a GPU (preset 'paper'); the CPU default is 20k steps of preset 'small' (~1 s per "
        "step on 2 busy cores: ~6 h; 'cpu' is its deprecated old name). Outputs: OUT/config.json, checkpoint/, "
        "metrics.jsonl (+TensorBoard), eval.json, eval.mp4. Options are the fields of "
        "genrl.baselines.config.BaselineConfig; re-run the same command to resume.")
    add_config_args(p, BaselineConfig, skip=("overrides",), flags={"embedding_id": "--embeddings"},
                    presets={"preset": AgentConfig}, converters={"eval_workers": eval_workers_arg})
    add_set_arg(p, "agent config", "hidden_dim=512 temperature=10")
    p.add_argument("--vlm", default="default", choices=NAMES, help="VLM of the reward (default: packaged MiniVLM)")
    p.add_argument("--vlm-path", default=None, help="local weights folder of the VLM (see `genrl embed --help`)")
    p.add_argument("--checkpoint", default=None, help="internvideo2 only: the stage-2 .pt checkpoint")
    p.add_argument("--n-frames", type=int, default=None, help="clip/siglip only: frames mean-pooled per clip")
    p.add_argument("--vlm-batch-size", type=int, default=64, help="clips per VLM forward pass (default: 64)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_print_config(p)
    p.set_defaults(func=cmd_baseline)

    c = subparsers.add_parser("compare", help="the paper's Table 1/5 layout from eval.json files, paper numbers beside",
                              description="Collect eval.json files (of genrl baseline runs and GenRL runs; schema in "
                              "genrl.evaluation.compare) and print mean ± standard error over seeds per task and "
                              "method, with domain and overall rows and the paper's numbers in brackets.")
    c.add_argument("runs", nargs="+", help="eval JSON files, or folders searched recursively for eval.json")
    c.add_argument("--out", default=None, help="write the Markdown table here (and CSV beside it, .csv)")
    c.add_argument("--csv", default=None, help="CSV path (default: --out with the .csv suffix)")
    c.set_defaults(func=cmd_compare)


def cmd_baseline(args: argparse.Namespace) -> int:
    cfg = config_from_args(BaselineConfig, args, overrides=parse_overrides(args.set, AgentConfig, "agent config"))
    vlm_args = argparse.Namespace(vlm=args.vlm, vlm_path=args.vlm_path, checkpoint=args.checkpoint,
                                  n_frames=args.n_frames, batch_size=args.vlm_batch_size)
    if args.print_config:
        return print_config({"baseline": cfg, "agent": make_config(cfg.algo, cfg.preset, **cfg.overrides),
                             "vlm": vars(vlm_args)})
    from genrl.app.vlm_cmd import embedder_from_args
    from genrl.baselines.train import train_baseline

    vlm = embedder_from_args(vlm_args)
    rec = train_baseline(cfg, vlm, progress=not args.quiet)
    keys = ("method", "reward", "task", "seed", "step", "mean_return", "mean_normalized", "stderr_normalized")
    print(json.dumps({k: rec.get(k) for k in keys}))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from genrl.evaluation.compare import compare
    from genrl.utils.io import write_text

    markdown, table_csv, _ = compare(args.runs)
    print(markdown, end="")
    csv_path = args.csv or (str(Path(args.out).with_suffix(".csv")) if args.out else None)
    for path, text in ((args.out, markdown), (csv_path, table_csv)):
        if path:
            write_text(path, text)
    return 0
