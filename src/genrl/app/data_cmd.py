"""``genrl data ...``: inspect and import datasets (folders of episodes + manifest + embeddings).

Usage::

    genrl data info DIR [--check]     # --check: open and validate every episode file (exit code 2 if any is bad)
    genrl data import SRC [SRC ...] --out DIR --domain stickman [--task stickman_walk] [--skip-bad]
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    """Register the ``data`` subcommand and its sub-subcommands."""
    from genrl.data.dataset import INTERNVIDEO2_ID, SIGLIP_ID

    p = subparsers.add_parser("data", help="inspect datasets, import official GenRL episodes")
    sub = p.add_subparsers(dest="data_cmd", required=True)
    info = sub.add_parser("info", help="domain, size, composition table (paper Table 4) and embeddings of a dataset")
    info.add_argument("dir", help="dataset folder (with manifest.json)")
    info.add_argument("--check", action="store_true", help="also open and validate every episode file (keys, "
                      "shapes, dtypes, lengths against the manifest and the dataset's action dim / frame size; "
                      "never unpickles) and name the bad ones; exit code 2 if any is bad")
    info.set_defaults(func=cmd_info)
    imp = sub.add_parser("import", help="copy official .npz episodes into a dataset (clip_video -> embeddings)")
    imp.add_argument("sources", nargs="+", help=".npz files or folders (searched recursively)")
    imp.add_argument("--out", required=True, help="dataset folder (created if needed)")
    imp.add_argument("--domain", required=True, help="domain of the episodes (walker, cheetah, quadruped, "
                     "stickman, kitchen)")
    imp.add_argument("--task", default=None, help="task the episodes were collected for, if known (meta)")
    imp.add_argument("--video-id", default=INTERNVIDEO2_ID, help=f"embedder id for clip_video "
                     f"(default {INTERNVIDEO2_ID})")
    imp.add_argument("--img-id", default=SIGLIP_ID, help=f"embedder id for clip_img (default {SIGLIP_ID})")
    imp.add_argument("--skip-bad", action="store_true", help="skip unreadable/invalid files with a warning")
    imp.set_defaults(func=cmd_import)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _frames(n: int) -> str:
    """Paper style: 500k, 2.5M."""
    if n >= 1_000_000:
        return f"{n / 1e6:.3g}M"
    if n >= 1_000:
        return f"{n / 1e3:.3g}k"
    return str(n)


def format_info(ds) -> str:
    """The text printed by ``genrl data info``."""
    lines = [f"dataset   {ds.root}",
             f"domain    {ds.domain} (action dim {ds.action_dim}, {ds.image_size}x{ds.image_size} frames)",
             f"episodes  {len(ds)}",
             f"frames    {ds.frames()} ({_frames(ds.frames())})",
             f"disk      {_size(ds.disk_size())}",
             "",
             "| subset | episodes | frames | share |",
             "|---|---:|---:|---:|"]
    for row in ds.composition():
        lines.append(f"| {row.subset} | {row.episodes} | {row.frames} ({_frames(row.frames)}) | "
                     f"{100 * row.fraction:.1f}% |")
    lines.append(f"| **total** | {len(ds)} | {ds.frames()} ({_frames(ds.frames())}) | 100.0% |")
    lines.append("")
    ids = ds.embeddings_ids()
    if not ids:
        lines.append("embeddings: none")
    else:
        lines.append("embeddings:")
        for emb in ids:
            have, total = ds.embedding_coverage(emb)
            dim = ds.embedding_dim(emb)
            lines.append(f"  {emb:32s} dim {dim if dim is not None else '?'}  {have}/{total} episodes")
    orphans = ds.orphans()
    if orphans:
        lines.append(f"unregistered episode files (not in the manifest): {len(orphans)}")
    return "\n".join(lines)


def check_episodes(ds) -> tuple[int, list[str]]:
    """Open and validate every episode file of the dataset ``ds``: those of the manifest
    (:meth:`~genrl.data.dataset.Dataset.load`: ``allow_pickle=False``, keys, dtypes, shapes, finite values, length
    against the manifest, action dim and frame size against the dataset) and unregistered ``.npz`` files in the
    episodes folder (format only). Each file is read eagerly, one at a time.

    Returns:
        ``(files checked, problems)``: one line per bad file, naming the file and what is wrong.
    """
    from genrl.data.episode import EpisodeError, load_episode

    names, orphans = ds.names(), ds.orphans()
    bad = []
    for name in names:
        try:
            ds.load(name)
        except EpisodeError as err:
            bad.append(str(err))
    for name in orphans:
        try:
            load_episode(ds.episode_path(name))
        except EpisodeError as err:
            bad.append(f"{err} (unregistered)")
    return len(names) + len(orphans), bad


def cmd_info(args: argparse.Namespace) -> int:
    """Print the dataset summary and its composition table; with ``--check``, validate every episode file too
    (exit code 2 if any is bad)."""
    from genrl.data.dataset import Dataset

    ds = Dataset(args.dir)
    print(format_info(ds))
    if not getattr(args, "check", False):
        return 0
    checked, bad = check_episodes(ds)
    if not bad:
        print(f"check     {checked} episode file(s) OK")
        return 0
    print(f"check     {len(bad)} of {checked} episode file(s) are bad:")
    for line in bad:
        print(f"  {line}")
    return 2


def cmd_import(args: argparse.Namespace) -> int:
    """Import official episodes; prints how many were imported and the resulting summary."""
    from genrl.data.dataset import Dataset
    from genrl.data.importer import import_episodes

    meta = {"task": args.task} if args.task else None
    names = import_episodes(args.sources, args.out, args.domain, embedder_id_for_clip_video=args.video_id,
                            embedder_id_for_clip_img=args.img_id, skip_bad=args.skip_bad, meta=meta)
    ds = Dataset(args.out)
    print(f"imported {len(names)} episode(s) into {ds.root}")
    print(format_info(ds))
    return 0
