"""Quality of a VLM on simulator clips (``genrl vlm eval``): retrieval and task-prompt retrieval.

Works for any :class:`~genrl.vlm.base.Embedder`, on clips of *held-out* episodes (never trained on) captioned with
the captioner's held-out templates (never trained on).

* Retrieval: among ``n`` held-out clips and one caption each, video->text and text->video top-1 / top-5 accuracy;
  a retrieved item counts as correct when its caption facts equal the query's (many clips share a caption).
* Task prompts: for each of the paper's Table 3 prompts (and hand-written paraphrases never used in training) in
  a domain, the mean reward of the prompt's task over the top-``top`` retrieved clips of that domain vs over all
  clips (= a random choice). A useful VLM retrieves clips where its task's reward is high. Kitchen tasks use their
  dense reward (minus the object's distance to its goal): exploration data almost never reaches success.
"""

from __future__ import annotations

import numpy as np
import torch

from genrl.envs.registry import PROMPTS
from genrl.vlm.base import Embedder
from genrl.vlm.clips import ClipSet, build_clips

# Paraphrases of Table 3 prompts, never used as training captions (checked by the tests).
PARAPHRASES: dict[str, str] = {
    "walker_stand": "a figure standing still and tall",
    "walker_walk": "moving forward at a walking pace",
    "walker_run": "sprinting forward quickly",
    "walker_lying_down": "lying flat on the floor",
    "walker_headstand": "balancing upside down on the head",
    "cheetah_run": "galloping forward at high speed",
    "cheetah_flipping": "doing somersaults",
    "cheetah_lying_down": "collapsed flat on the ground",
    "quadruped_walk": "a four-legged creature moving forward",
    "quadruped_stand": "an insect-like robot standing still",
    "stickman_stand": "a person standing still",
    "stickman_run": "a humanoid sprinting forward",
    "stickman_hands_up": "raising both arms above the head",
    "stickman_boxing": "throwing punches",
    "kitchen_microwave": "the robot pulls the microwave door open",
    "kitchen_light": "turning the light switch on",
}


def _topk_hits(sim: torch.Tensor, sig_q: np.ndarray, sig_c: np.ndarray, ks: tuple[int, ...]) -> dict[int, float]:
    order = sim.topk(max(ks), dim=1).indices.numpy()
    match = sig_c[order] == sig_q[:, None]
    return {k: float(match[:, :k].any(1).mean()) for k in ks}


def retrieval(embedder: Embedder, clips: ClipSet, n: int = 1000, seed: int = 0) -> dict:
    """Video<->caption top-1/top-5 accuracy on ``n`` random clips of ``clips`` (one caption each)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(clips), size=min(n, len(clips)), replace=False)
    texts = [clips.texts[clips.captions[i][0]] for i in idx]
    v = embedder.embed_video(clips.clip_frames(idx))
    t = embedder.embed_text(texts)
    sig = clips.signature[idx]
    v2t = _topk_hits(v @ t.T, sig, sig, (1, 5))
    t2v = _topk_hits(t @ v.T, sig, sig, (1, 5))
    chance = float(np.mean([(sig == s).mean() for s in sig]))
    return {"clips": len(idx), "video_to_text_top1": v2t[1], "video_to_text_top5": v2t[5],
            "text_to_video_top1": t2v[1], "text_to_video_top5": t2v[5], "chance_top1": chance}


def prompt_retrieval(embedder: Embedder, clips: ClipSet, top: int = 20,
                     prompts: dict[str, str] | None = None) -> list[dict]:
    """For each ``task -> prompt`` whose domain and task exist in ``clips``: top-``top`` vs mean task reward.

    Returns rows ``{"task", "prompt", "top_reward", "mean_reward", "max_reward", "gain"}`` where ``gain`` is
    ``(top - mean) / (max - mean)`` (1 = the top clips are the best clips in the pool, 0 = random).
    """
    prompts = PROMPTS if prompts is None else prompts
    rows = []
    video_cache: dict[str, torch.Tensor] = {}
    for task, prompt in prompts.items():
        domain, name = task.split("_", 1)
        if f"{name}_dense" in clips.task_names.get(domain, []):
            name = f"{name}_dense"  # kitchen: success is ~never reached by exploration; rank by -distance to goal
        if domain not in clips.rewards or name not in clips.task_names.get(domain, []):
            continue
        di = clips.domains.index(domain)
        members = np.flatnonzero((clips.domain == di) & (clips.reward_rows >= 0))
        if len(members) < top:
            continue
        if domain not in video_cache:
            video_cache[domain] = embedder.embed_video(clips.clip_frames(members))
        reward = clips.rewards[domain][clips.reward_rows[members], clips.task_names[domain].index(name)]
        sim = (video_cache[domain] @ embedder.embed_text([prompt]).T)[:, 0]
        best = sim.topk(top).indices.numpy()
        top_r, mean_r = float(reward[best].mean()), float(reward.mean())
        max_r = float(np.sort(reward)[-top:].mean())
        rows.append({"task": task, "prompt": prompt, "top_reward": round(top_r, 4), "mean_reward": round(mean_r, 4),
                     "max_reward": round(max_r, 4),
                     "gain": round((top_r - mean_r) / (max_r - mean_r), 3) if max_r > mean_r else None})
    return rows


def evaluate_vlm(embedder: Embedder, dataset_dirs: list[str], n: int = 1000, top: int = 20, stride: int = 8,
                 max_episodes: int | None = None, seed: int = 0, progress: bool = True,
                 heldout_fraction: float = 0.1) -> dict:
    """Full report: retrieval on held-out clips, Table 3 prompts, and unseen paraphrases (see module doc).

    ``heldout_fraction`` must match the one used in training (:func:`genrl.vlm.clips.is_heldout`).
    """
    clips = build_clips(dataset_dirs, k=embedder.n_frames, stride=stride, split="heldout", paraphrases=1,
                        max_episodes=max_episodes, seed=seed, progress=progress, heldout_fraction=heldout_fraction)
    report = {"embedder": embedder.id, "heldout_clips": len(clips), "domains": clips.domains,
              "retrieval": retrieval(embedder, clips, n, seed),
              "table3_prompts": prompt_retrieval(embedder, clips, top),
              "paraphrases": prompt_retrieval(embedder, clips, top, PARAPHRASES)}
    for key in ("table3_prompts", "paraphrases"):
        gains = [r["gain"] for r in report[key] if r["gain"] is not None]
        wins = [r["top_reward"] > r["mean_reward"] for r in report[key]]
        report[f"{key}_summary"] = {"prompts": len(report[key]),
                                    "mean_gain": round(float(np.mean(gains)), 3) if gains else None,
                                    "above_random": int(sum(wins))}
    return report


def format_report(report: dict) -> str:
    """Human-readable tables of :func:`evaluate_vlm`'s report."""
    r = report["retrieval"]
    lines = [f"VLM {report['embedder']}: {report['heldout_clips']} held-out clips ({', '.join(report['domains'])})",
             f"retrieval on {r['clips']} clips: video->text top1 {r['video_to_text_top1']:.3f} top5 "
             f"{r['video_to_text_top5']:.3f} | text->video top1 {r['text_to_video_top1']:.3f} top5 "
             f"{r['text_to_video_top5']:.3f} | chance top1 {r['chance_top1']:.3f}"]
    for key, title in (("table3_prompts", "Table 3 prompts"), ("paraphrases", "unseen paraphrases")):
        s = report[f"{key}_summary"]
        lines.append(f"\n{title}: top-k task reward vs random clips ({s['above_random']}/{s['prompts']} above "
                     f"random, mean gain {s['mean_gain']})")
        lines.append(f"{'task':<22} {'top':>7} {'random':>7} {'best':>7} {'gain':>6}  prompt")
        for row in report[key]:
            gain = "-" if row["gain"] is None else f"{row['gain']:.2f}"
            lines.append(f"{row['task']:<22} {row['top_reward']:7.3f} {row['mean_reward']:7.3f} "
                         f"{row['max_reward']:7.3f} {gain:>6}  {row['prompt']}")
    return "\n".join(lines)
