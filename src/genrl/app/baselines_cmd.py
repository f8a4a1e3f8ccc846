"""``genrl baseline`` and ``genrl compare``: VLM-reward offline RL baselines and the paper's comparison table.

Usage::

    genrl embed runs/data/walker --vlm default            # once per dataset and VLM (video reward embeddings)
    genrl baseline --algo iql --reward video --task walker_walk --dataset runs/data/walker --out runs/bl/iql_v_s0
    genrl baseline --algo td3bc --reward image --task walker_walk --dataset runs/data/walker --out ... --seed 1
    genrl compare runs/bl runs/genrl --out table.md       # Markdown + table.csv; paper numbers in brackets
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from genrl.app.overrides import parse_overrides


def add_parser(subparsers) -> None:
    """Register ``baseline`` and ``compare``."""
    from genrl.vlm.registry import NAMES

    p = subparsers.add_parser(
        "baseline", help="train + evaluate IQL / TD3+BC / TD3 on pixels with a VLM reward (resumable)",
        description="Model-free offline RL from pixels (64x64, frame stack 3, DrQ-v2 encoder, LayerNorm MLPs) "
        "with an image-language (cosine of the prompt and the current frame) or video-language (cosine of the "
        "prompt and the clip of the last k frames) reward; paper section 4.1 / appendix D. The paper trains "
        "500k gradient steps on a GPU (preset 'paper'); the CPU default is 20k steps of preset 'cpu' (~1 s per "
        "step on 2 busy cores: ~6 h). Outputs: OUT/config.json, checkpoint/, metrics.jsonl (+TensorBoard), eval.json, "
        "eval.mp4. Re-run the same command to resume.")
    p.add_argument("--algo", required=True, choices=("iql", "td3bc", "td3"))
    p.add_argument("--reward", required=True, choices=("image", "video"),
                   help="image: embedding of the current frame (a static clip for a video VLM); video: of the "
                   "last k frames (needs `genrl embed DATASET` with the same VLM first)")
    p.add_argument("--task", required=True, help="task evaluated, e.g. walker_walk (its domain = the dataset's)")
    p.add_argument("--dataset", required=True, help="dataset folder of the task's domain")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--prompt", default=None, help="reward prompt (default: the paper's Table 3 prompt of the task)")
    p.add_argument("--vlm", default="default", choices=NAMES, help="VLM of the reward (default: packaged MiniVLM)")
    p.add_argument("--vlm-path", default=None, help="local weights folder of the VLM (see `genrl embed --help`)")
    p.add_argument("--checkpoint", default=None, help="internvideo2 only: the stage-2 .pt checkpoint")
    p.add_argument("--n-frames", type=int, default=None, help="clip/siglip only: frames mean-pooled per clip")
    p.add_argument("--vlm-batch-size", type=int, default=64, help="clips per VLM forward pass")
    p.add_argument("--embeddings", default=None, metavar="ID",
                   help="read these stored dataset embeddings instead of the VLM's own, e.g. siglip-b16-224 (official "
                   "clip_img imported by `genrl data import`; must be of the same model as --vlm)")
    p.add_argument("--steps", type=int, default=20000, help="gradient steps (paper: 500k on a GPU; 20k: CPU)")
    p.add_argument("--batch-size", type=int, default=256, help="transitions per gradient step")
    p.add_argument("--eval-every", type=int, default=5000, help="updates between evaluations (0: only the final one)")
    p.add_argument("--eval-episodes", type=int, default=10, help="episodes per evaluation (paper: 20)")
    p.add_argument("--eval-max-steps", type=int, default=None,
                   help="cap evaluation episodes (smoke tests only; not comparable with the paper)")
    p.add_argument("--save-every", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--preset", default="cpu", choices=("paper", "cpu", "tiny"), help="network sizes")
    p.add_argument("--reward-norm", default="standardize", choices=("standardize", "none"),
                   help="z-score the cosine rewards over the dataset (default) or use them raw")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="agent config overrides, e.g. --set hidden_dim=512 temperature=10")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
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
    from genrl.app.vlm_cmd import embedder_from_args
    from genrl.baselines.algos import AgentConfig
    from genrl.baselines.train import BaselineConfig, train_baseline

    overrides = parse_overrides(args.set, AgentConfig, "agent config")
    vlm = embedder_from_args(argparse.Namespace(vlm=args.vlm, vlm_path=args.vlm_path, checkpoint=args.checkpoint,
                                                n_frames=args.n_frames, batch_size=args.vlm_batch_size))
    cfg = BaselineConfig(algo=args.algo, reward=args.reward, task=args.task, dataset=args.dataset, out=args.out,
                         prompt=args.prompt, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                         eval_every=args.eval_every, eval_episodes=args.eval_episodes,
                         eval_max_steps=args.eval_max_steps, save_every=args.save_every, log_every=args.log_every,
                         threads=args.threads, preset=args.preset, overrides=overrides,
                         reward_norm=args.reward_norm, device=args.device, embedding_id=args.embeddings)
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
