"""``OUT/report.html`` of ``genrl demo``: a page a person can read (issue "The main job end to end").

Sections: scores table (raw and normalized, with the paper's random/expert references), decoded prompt GIFs beside
the learned behaviors' rollout videos, loss curves (PNG plots of the ``metrics.jsonl`` files), the dataset's
composition, timings per stage, versions, and the exact commands. Paths in the page are relative to ``OUT`` so the
folder can be moved or zipped as a whole.
"""

from __future__ import annotations

import html
import json
import platform
import sys
from pathlib import Path

from genrl.utils.eval_metrics import canonical_metric_names
from genrl.utils.io import atomic_path, write_text

PLOTS = {  # plot file -> (metrics.jsonl relative to OUT, [(key, label)])
    "pretrain_losses.png": ("mfwm/metrics.jsonl", [("train/image_mse", "image MSE"), ("train/model_kl", "model KL"),
                                                   ("train/connector_kl", "connector KL"),
                                                   ("train/aligner_cosine_distance", "aligner 1 - cos")]),
}


def _read_jsonl(path: Path) -> list[dict]:
    """The rows of a ``metrics.jsonl``, evaluation metrics under their current names (runs logged before the names
    were unified too: :func:`genrl.utils.eval_metrics.canonical_metric_names`)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(canonical_metric_names(json.loads(line)))
        except json.JSONDecodeError:  # a line cut by a crash
            continue
    return rows


def plot_curves(rows: list[dict], keys: list[tuple[str, str]], out: Path, title: str) -> Path | None:
    """One PNG with a panel per metric key (x = update step); None when no row has any of the keys."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [(k, label) for k, label in keys if any(k in r for r in rows)]
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.6), squeeze=False)
    for ax, (k, label) in zip(axes[0], keys):
        pts = [(r["step"], r[k]) for r in rows if k in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.2)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("update", fontsize=8)
        ax.tick_params(labelsize=7)
        if k.endswith("mse") or k.endswith("kl"):
            ax.set_yscale("log")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return out


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    import torch

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("genrl", "torch", "mujoco", "dm_control", "gymnasium", "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "-"
    out["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else \
        f"CPU ({torch.get_num_threads()} threads)"
    return out


def _fmt(x, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _media(rel: str, width: int = 256) -> str:
    rel = html.escape(rel)
    if rel.endswith(".mp4"):
        return f'<video src="{rel}" width="{width}" autoplay loop muted playsinline></video>'
    return f'<img src="{rel}" width="{width}">'


def _scores_table(runs: dict) -> str:
    from genrl.envs.registry import PROMPTS, reference_scores

    head = ("<tr><th>behavior</th><th>start states</th><th>prompt</th><th>return (mean ± std)</th>"
            "<th>normalized (mean ± s.e.)</th><th>paper random / expert</th><th>episodes</th><th>train time</th></tr>")
    rows = []
    for name, run in runs.items():
        ev = run.get("eval") or {}
        ref = reference_scores(run["task"])
        rows.append(
            f"<tr><td>{html.escape(run['task'])}</td><td>{'data-free' if run['data_free'] else 'offline'}</td>"
            f"<td>{html.escape(PROMPTS.get(run['task'], ''))}</td>"
            f"<td>{_fmt(ev.get('mean_return'), 1)} ± {_fmt(ev.get('std_return'), 1)}</td>"
            f"<td><b>{_fmt(ev.get('mean_normalized'))}</b> ± {_fmt(ev.get('stderr_normalized'))}</td>"
            f"<td>{'-' if ref is None else f'{ref[0]:.1f} / {ref[1]:.1f}'}</td><td>{ev.get('episodes', '-')}</td>"
            f"<td>{run.get('seconds', 0) / 60:.1f} min</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _behavior_media(out: Path, runs: dict, decoded: dict) -> str:
    from genrl.app.demo import slug

    cells = []
    for name, run in runs.items():
        videos = sorted((out / "behave" / name / "videos").glob("*.mp4"))
        video = _media(str(videos[-1].relative_to(out))) if videos else "(no video)"
        from genrl.envs.registry import PROMPTS

        prompt = PROMPTS.get(run["task"], "")
        dec = out / "decoded" / f"{slug(prompt)}.gif"
        if not dec.is_file():
            dec = None
        cells.append(f"<tr><td>{html.escape(name)}<br><i>{html.escape(prompt)}</i></td>"
                     f"<td>{_media(str(dec.relative_to(out))) if dec else '(not decoded)'}</td><td>{video}</td></tr>")
    return ("<table><tr><th>behavior</th><th>decoded prompt (the model's reading, before any behavior)</th>"
            f"<th>learned behavior in the real environment</th></tr>{''.join(cells)}</table>")


def write_report(out: str | Path, state: dict) -> Path:
    """Write ``OUT/report.html`` (and its plots under ``OUT/plots``) from the demo state; returns the page's path."""
    out = Path(out)
    stages = state.get("stages", {})
    settings = state["settings"]
    parts = [f"<h1>GenRL demo: {html.escape(settings['domain'])} ({html.escape(settings['preset'])} preset)</h1>",
             f"<p>Path: <b>{html.escape(settings.get('path', 'from scratch'))}</b> "
             + ("(behaviors learned on the MFWM shipped with the package; <code>genrl demo --from-scratch</code> "
                "pre-trains one instead)" if settings.get("path", "").startswith("shipped") else
                "(collect, embed and pre-train here, then learn behaviors)") + "</p>"]
    runs = stages.get("behave", {}).get("runs", {})
    if runs:
        parts += ["<h2>Scores in the real environment</h2>", _scores_table(runs),
                  "<p>Normalized score = (return - random) / (expert - random) with the paper's reference returns; "
                  "the actor's mean action, acting from pixels through the world model's posterior.</p>"]
        parts += ["<h2>Prompts and behaviors</h2>", _behavior_media(out, runs, stages.get("decode", {}))]
    decoded = stages.get("decode", {}).get("files", {})
    if decoded:
        parts.append("<h2>Decoded prompts</h2><table><tr>" + "".join(
            f"<td>{html.escape(k)}<br>{_media(v)}</td>" for k, v in decoded.items()) + "</tr></table>")
    plots = []
    for fname, (src, keys) in PLOTS.items():
        p = plot_curves(_read_jsonl(out / src), keys, out / "plots" / fname, "pre-training")
        plots += [p] if p else []
    for name in runs:
        p = plot_curves(_read_jsonl(out / "behave" / name / "metrics.jsonl"),
                        [("train/reward_mean", "imagined reward"), ("train/actor_loss", "actor loss"),
                         ("train/critic_loss", "critic loss")], out / "plots" / f"behave_{name}.png", name)
        plots += [p] if p else []
    if plots:
        parts.append("<h2>Training curves</h2>" + "".join(
            f'<img src="{html.escape(str(p.relative_to(out)))}"><br>' for p in plots))
    if (out / "data" / "manifest.json").is_file():
        from genrl.app.data_cmd import format_info
        from genrl.data.dataset import Dataset

        parts.append(f"<h2>Dataset</h2><pre>{html.escape(format_info(Dataset(out / 'data')))}</pre>")
    total = sum(s.get("seconds", 0.0) for s in stages.values())
    parts.append("<h2>Timings</h2><table><tr><th>stage</th><th>wall-clock</th></tr>" + "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v.get('seconds', 0) / 60:.1f} min</td></tr>" for k, v in stages.items())
        + f"<tr><td><b>total</b></td><td><b>{total / 60:.1f} min</b></td></tr></table>")
    parts.append("<h2>Versions</h2><table>" + "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in _versions().items()) + "</table>")
    commands = [c for s in stages.values() for c in s.get("commands", [])]
    parts.append("<h2>Commands (the same stages one by one)</h2><pre>" + html.escape("\n".join(commands)) + "</pre>")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>GenRL demo</title><style>"
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}</style></head><body>"
            + "\n".join(parts) + "</body></html>")
    path = out / "report.html"
    write_text(path, page)
    return path


__all__ = ["plot_curves", "write_report"]
