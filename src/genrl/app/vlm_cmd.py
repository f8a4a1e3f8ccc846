"""``genrl vlm ...`` and ``genrl embed``: video-language models.

Usage::

    genrl vlm train --datasets runs/data/walker runs/data/cheetah ... --out src/genrl/vlm/weights/minivlm
    genrl vlm train --datasets runs/data/walker --out runs/vlm --preset tiny --set dim=32 --print-config  # nothing runs
    genrl vlm eval --datasets runs/data/walker ... [--vlm default] [--json report.json]
    genrl vlm text "a spider walking fast" "lying down"      # cosine similarities between prompts
    genrl embed DATASET --vlm default                         # store per-step embeddings in the dataset
    genrl embed DATASET --vlm default --nproc 2 [--device cuda] # the episodes split over 2 processes (torchrun)
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from genrl.app.config_args import add_config_args, add_print_config, config_from_args, preset_option, print_config
from genrl.app.overrides import add_set_arg, parse_overrides
from genrl.vlm.config import MiniVLMConfig, MiniVLMTrainConfig, minivlm_preset


def _add_vlm_args(p: argparse.ArgumentParser) -> None:
    from genrl.vlm.registry import NAMES

    p.add_argument("--vlm", default="default", choices=NAMES, help="embedder (default: the packaged MiniVLM)")
    p.add_argument("--vlm-path", default=None, help="local weights folder (xclip/clip/siglip: save_pretrained "
                   "folder; internvideo2: the official multi_modality code folder; minivlm: weights folder)")
    p.add_argument("--checkpoint", default=None, help="internvideo2 only: the stage-2 .pt checkpoint")
    p.add_argument("--n-frames", type=int, default=None, help="clip/siglip only: frames mean-pooled per clip")
    p.add_argument("--batch-size", type=int, default=64, help="clips per forward pass")


def embedder_from_args(args: argparse.Namespace, device=None):
    """Build the embedder named by ``--vlm``/``--vlm-path``/``--checkpoint``/``--n-frames`` (on ``device``, if
    given; else the backend's default, the CPU)."""
    from genrl.vlm.registry import make_embedder

    kwargs = {"batch_size": args.batch_size}
    if device is not None:
        kwargs["device"] = device
    if args.checkpoint is not None:
        kwargs["checkpoint"] = args.checkpoint
    if args.n_frames is not None:
        kwargs["n_frames"] = args.n_frames
    return make_embedder(args.vlm, args.vlm_path, **kwargs)


def add_parser(subparsers) -> None:
    """Register ``vlm`` (train/eval/text) and ``embed``."""
    p = subparsers.add_parser("vlm", help="train/evaluate the default MiniVLM, embed prompts")
    sub = p.add_subparsers(dest="vlm_cmd", required=True)
    tr = sub.add_parser("train", help="train the MiniVLM on captioned clips of datasets (contrastive)",
                        description="Contrastive training of the default MiniVLM on captioned clips of datasets. "
                        "Options are the fields of genrl.vlm.config.MiniVLMTrainConfig, its architecture (model) "
                        "a preset of genrl.vlm.config.MiniVLMConfig; re-run to resume.")
    add_config_args(tr, MiniVLMTrainConfig, skip=("model",))
    tr.add_argument("--preset", default="small", **preset_option(MiniVLMConfig),
                    help="MiniVLM architecture (small: the packaged MiniVLM's; tiny: tests only) (default: small)")
    add_set_arg(tr, "MiniVLM architecture", "dim=128 layers=1")
    add_print_config(tr)
    tr.set_defaults(func=cmd_train)
    ev = sub.add_parser("eval", help="retrieval and Table 3 prompt quality on held-out episodes")
    ev.add_argument("--datasets", nargs="+", required=True)
    _add_vlm_args(ev)
    ev.add_argument("--clips", type=int, default=1000, help="clips in the retrieval pool")
    ev.add_argument("--top", type=int, default=20, help="clips retrieved per prompt")
    ev.add_argument("--max-episodes", type=int, default=None)
    ev.add_argument("--json", default=None, help="also write the report here")
    ev.set_defaults(func=cmd_eval)
    tx = sub.add_parser("text", help="embed prompts and print their cosine similarities")
    tx.add_argument("prompts", nargs="+")
    _add_vlm_args(tx)
    tx.set_defaults(func=cmd_text)
    em = subparsers.add_parser("embed", help="store per-step VLM embeddings of a dataset (resumable)")
    em.add_argument("dataset", help="dataset folder")
    _add_vlm_args(em)
    em.add_argument("--overwrite", action="store_true", help="re-embed episodes that already have embeddings")
    em.add_argument("--device", default="cpu", help="device of the VLM: cpu, cuda (one GPU per process: "
                    "cuda:LOCAL_RANK) or auto (default: cpu)")
    em.add_argument("--nproc", type=int, default=1, help="processes on this machine, each embedding its share of "
                    "the episodes (re-runs the command under torchrun --standalone; leave it out under torchrun) "
                    "(default: 1)")
    em.set_defaults(func=cmd_embed)


def cmd_train(args: argparse.Namespace) -> int:
    arch = minivlm_preset(args.preset, **parse_overrides(args.set, MiniVLMConfig, "MiniVLM config"))
    cfg = config_from_args(MiniVLMTrainConfig, args, model=arch)
    if args.print_config:
        return print_config({"vlm_train": cfg})
    from genrl.vlm.train_minivlm import train_minivlm

    command = "genrl " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    card = train_minivlm(cfg, command=command)
    print(f"saved {args.out} (id {card['id']}): final loss {card['final_loss']}, top1 {card['final_top1']}, "
          f"{card['train_seconds_this_run']} s")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from genrl.utils.io import write_json
    from genrl.vlm.evaluate import evaluate_vlm, format_report

    report = evaluate_vlm(embedder_from_args(args), args.datasets, n=args.clips, top=args.top,
                          max_episodes=args.max_episodes)
    print(format_report(report))
    if args.json:
        write_json(args.json, report)
    return 0


def cmd_text(args: argparse.Namespace) -> int:
    vlm = embedder_from_args(args)
    e = vlm.embed_text(args.prompts)
    sim = (e @ e.T).numpy()
    print(json.dumps({"embedder": vlm.id, "dim": vlm.dim, "prompts": args.prompts,
                      "cosine": [[round(float(x), 3) for x in row] for row in sim]}, indent=1))
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from genrl.utils.distributed import device_for_rank, env_info, launched, process_group, relaunch

    if args.nproc > 1 and not launched():
        return relaunch(args.nproc, args.argv)
    from genrl.utils.device import resolve_device
    from genrl.vlm.embed import embed_dataset

    dp = env_info()
    device = device_for_rank(resolve_device(args.device), dp)
    with process_group(device, backend="gloo"):  # the ranks only exchange progress counts
        vlm = embedder_from_args(args, device=device)
        stats = embed_dataset(args.dataset, vlm, overwrite=args.overwrite)
    if not dp.is_main:
        return 0
    print(f"embedded {stats['episodes']} episodes ({stats['frames']} frames, {stats['frames_per_second']} "
          f"frames/s) with {stats['embedder']}; {stats['skipped']} already done")
    return 0
