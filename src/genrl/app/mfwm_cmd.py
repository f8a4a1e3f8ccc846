"""``genrl pretrain`` and ``genrl decode``: the multimodal-foundation world model.

Usage::

    genrl embed runs/data/walker --vlm default                    # once: per-step VLM embeddings
    genrl pretrain runs/data/walker --out runs/walker_mfwm --preset small [--steps 20000]
    genrl pretrain runs/data/walker --out runs/walker_mfwm --set batch_size=8 --print-config   # nothing runs
    genrl pretrain runs/data/walker --out runs/walker_mfwm --nproc 2       # data-parallel, 2 processes (torchrun)
    genrl decode runs/walker_mfwm --prompt "lying on the back" --out lying.gif
    genrl decode runs/walker_mfwm --video prompt.mp4 --out video.gif [--video-aligner]
    genrl pretrain-eval runs/walker_mfwm [--video-prompts DIR]     # held-out metrics + pictures in RUN/eval
    genrl import-official genrl_stickman_500k_2.pt --official-code DIR --out runs/stickman_official
"""

from __future__ import annotations

import argparse
import json

from genrl.app.config_args import add_config_args, add_print_config, config_from_args, print_config
from genrl.app.overrides import add_set_arg, parse_overrides
from genrl.app.vlm_cmd import _add_vlm_args, embedder_from_args
from genrl.mfwm.config import PretrainConfig, world_model_config
from genrl.worldmodel.config import WorldModelConfig


def add_parser(subparsers) -> None:
    """Register ``pretrain`` and ``decode``."""
    p = subparsers.add_parser("pretrain", help="train world model + connector + aligner on a dataset (resumable)",
                              description="Pre-train the multimodal-foundation world model (world model, connector, "
                              "aligner) on a dataset's stored VLM embeddings. Options are the fields of "
                              "genrl.mfwm.config.PretrainConfig; re-run the same command to resume.")
    add_config_args(p, PretrainConfig, positional=("dataset",), skip=("overrides", "embedder_id", "n_frames"),
                    presets={"preset": WorldModelConfig})
    add_set_arg(p, "world-model config", "batch_size=8 precision=fp32")
    _add_vlm_args(p)
    add_print_config(p)
    p.set_defaults(func=cmd_pretrain)
    d = subparsers.add_parser("decode", help="decode a text/video prompt into frames with a pre-trained MFWM")
    d.add_argument("run", help="pre-training run folder or shipped model name (genrl models)")
    src = d.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="text prompt")
    src.add_argument("--video", help="video prompt (mp4/gif, any length and size)")
    d.add_argument("--out", required=True, help="output .gif or .mp4")
    _add_vlm_args(d)
    d.add_argument("--horizon", type=int, default=32, help="decoded steps")
    d.add_argument("--samples", type=int, default=4, help="rollouts side by side (sampled initial states)")
    d.add_argument("--video-aligner", action="store_true", help="also pass video prompts through the aligner "
                   "(the official behavior); text prompts always use it")
    d.set_defaults(func=cmd_decode)
    e = subparsers.add_parser("pretrain-eval", help="held-out metrics of a pre-trained MFWM (reconstruction, "
                              "open loop, connector, aligner, prompt postures) with pictures")
    e.add_argument("run", help="pre-training run folder or shipped model name (genrl models)")
    e.add_argument("--out", default=None, help="output folder (default RUN/eval; runs/eval_NAME for a shipped model)")
    _add_vlm_args(e)
    e.add_argument("--prompt", action="append", default=None, help="text prompt to decode (repeatable; default: "
                   "'standing upright', 'lying on the back', 'walking')")
    e.add_argument("--video-prompts", nargs="*", default=[], help="video files or folders of videos to decode")
    e.add_argument("--batches", type=int, default=4, help="held-out batches of 16 sequences")
    e.add_argument("--dataset", default=None, help="dataset folder (default: the run's)")
    e.set_defaults(func=cmd_pretrain_eval)
    i = subparsers.add_parser("import-official", help="convert an official GenRL snapshot (.pt) into a pre-training "
                              "run folder (unpickles: trusted files only)")
    i.add_argument("snapshot", help="official snapshot, e.g. genrl_stickman_500k_2.pt (a pickle: it runs code when "
                   "loaded, so convert only files you trust)")
    i.add_argument("--official-code", required=True, metavar="DIR", help="checkout of the official code "
                   "(mazpie/genrl; the folder with agent/genrl.py), put on sys.path only to unpickle")
    i.add_argument("--out", required=True, help="new run folder (config.json + checkpoint/)")
    i.add_argument("--domain", default=None, help="embodiment (default: from the snapshot's task)")
    i.add_argument("--keep-reward-head", action="store_true", help="keep the world model's reward head (unused by "
                   "GenRL; without it the config is the paper preset)")
    i.set_defaults(func=cmd_import_official)


def cmd_pretrain(args: argparse.Namespace) -> int:
    from genrl.utils.distributed import env_info, launched, relaunch  # torch-free until used

    overrides = parse_overrides(args.set, WorldModelConfig, "world-model config")
    if args.nproc > 1 and not launched() and not args.print_config:
        return relaunch(args.nproc, args.argv)  # before loading the VLM: each process checks the rest itself
    vlm = embedder_from_args(args)
    cfg = config_from_args(PretrainConfig, args, embedder_id=vlm.id, n_frames=vlm.n_frames, overrides=overrides)
    if args.print_config:
        return print_config({"pretrain": cfg, "world_model": world_model_config(cfg)})
    from genrl.mfwm.pretrain import pretrain

    last = pretrain(cfg)
    if env_info().is_main:
        print(json.dumps({k: round(v, 5) for k, v in last.items()}, indent=1))
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    from genrl.mfwm.decode import decode_prompt, matching_embedder, prompt_embedding, write_decoded
    from genrl.mfwm.pretrain import load_pretrained

    model, cfg = load_pretrained(args.run)
    vlm = embedder_from_args(args)
    vlm = matching_embedder(cfg, vlm)
    emb, info = prompt_embedding(vlm, args.prompt, args.video)
    use_aligner = args.prompt is not None or args.video_aligner
    frames = decode_prompt(model, emb, args.horizon, use_aligner=use_aligner, samples=args.samples)
    path = write_decoded(frames, args.out)
    print(json.dumps({**info, "aligner": use_aligner, "out": str(path)}))
    return 0


def cmd_import_official(args: argparse.Namespace) -> int:
    import sys

    from genrl.mfwm.import_official import TRUST_WARNING, import_official

    print(f"note: {TRUST_WARNING}", file=sys.stderr)
    cfg = import_official(args.snapshot, args.official_code, args.out, domain=args.domain,
                          reward_head=args.keep_reward_head)
    print(json.dumps({"out": args.out, "domain": cfg["domain"], "embedder_id": cfg["embedder_id"],
                      "official_step": cfg["imported_from"]["official_step"]}))
    return 0


def cmd_pretrain_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from genrl.mfwm.evaluate import DEFAULT_PROMPTS, evaluate_pretrained

    videos: list[Path] = []
    for item in args.video_prompts:
        path = Path(item)
        if path.is_dir():
            videos += sorted(p for p in path.iterdir() if p.suffix.lower() in (".mp4", ".gif", ".webm", ".avi"))
        elif path.is_file():
            videos.append(path)
        else:
            raise FileNotFoundError(f"video prompt {path} does not exist")
    report = evaluate_pretrained(args.run, embedder_from_args(args), out=args.out,
                                 prompts=args.prompt or DEFAULT_PROMPTS, videos=videos, batches=args.batches,
                                 dataset=args.dataset)
    report.pop("heldout_episodes")
    print(json.dumps(report, indent=1))
    return 0
