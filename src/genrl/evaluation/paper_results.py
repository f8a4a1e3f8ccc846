"""The paper's offline-RL numbers (Mazzaglia et al., NeurIPS 2024), transcribed for side-by-side comparison.

Source: ``reference/paper.md`` — Table 5 (appendix F: "Offline RL from language prompts on tasks that are included
in the agent's training dataset. Scores are episodic rewards averaged over 5 seeds (± standard error) rescaled
using min-max scaling with (min = random, max = expert)") and Table 1 (section 4.1: the same, averaged per
domain). The baselines were trained 500k gradient steps and evaluated on 20 episodes; image-language rewards used
SigLIP-B, video-language rewards InternVideo2. The multi-task generalization results (Figure 3 / Figure 7) are
only given as plots and are not transcribed.

Columns (:data:`COLUMNS`): ``iql-image``, ``iql-video``, ``td3bc-image``, ``td3bc-video``, ``td3-image``,
``td3-video``, ``genrl``. Values are ``(mean, standard error)`` of the normalized score.
"""

from __future__ import annotations

COLUMNS = ("iql-image", "iql-video", "td3bc-image", "td3bc-video", "td3-image", "td3-video", "genrl")
LABELS = {"iql-image": "IQL-image", "iql-video": "IQL-video", "td3bc-image": "TD3+BC-image",
          "td3bc-video": "TD3+BC-video", "td3-image": "TD3-image", "td3-video": "TD3-video", "genrl": "GenRL"}

# Paper Table 5 columns in its order: image (IQL, TD3+BC, TD3), video (IQL, TD3+BC, TD3), GenRL.
_T5_ORDER = ("iql-image", "td3bc-image", "td3-image", "iql-video", "td3bc-video", "td3-video", "genrl")
_T5 = {
    "walker_stand": ((0.68, 0.03), (0.97, 0.01), (0.92, 0.06), (0.72, 0.05), (0.59, 0.05), (1.0, 0.0), (1.01, 0.0)),
    "walker_run": ((0.24, 0.03), (0.27, 0.02), (0.11, 0.03), (0.26, 0.02), (0.25, 0.02), (0.35, 0.01), (0.76, 0.01)),
    "walker_walk": ((0.37, 0.04), (0.25, 0.03), (0.15, 0.0), (0.43, 0.04), (0.39, 0.01), (0.86, 0.04), (0.95, 0.03)),
    "cheetah_run": ((0.37, 0.07), (-0.01, 0.0), (-0.01, 0.0), (0.15, 0.03), (-0.01, 0.0), (0.34, 0.01),
                    (0.74, 0.01)),
    "quadruped_stand": ((0.32, 0.06), (0.4, 0.06), (0.62, 0.04), (0.39, 0.04), (0.41, 0.13), (0.73, 0.06),
                        (0.98, 0.0)),
    "quadruped_run": ((0.3, 0.03), (0.35, 0.01), (0.25, 0.02), (0.36, 0.04), (0.35, 0.04), (0.23, 0.02),
                      (0.61, 0.04)),
    "quadruped_walk": ((0.16, 0.02), (0.18, 0.02), (0.37, 0.02), (0.19, 0.04), (0.16, 0.04), (0.37, 0.02),
                       (0.73, 0.06)),
    "stickman_run": ((0.2, 0.02), (0.25, 0.02), (0.03, 0.0), (0.24, 0.02), (0.18, 0.03), (0.21, 0.0), (0.35, 0.02)),
    "stickman_walk": ((0.43, 0.07), (0.52, 0.05), (0.18, 0.01), (0.47, 0.02), (0.45, 0.08), (0.42, 0.03),
                      (0.78, 0.02)),
    "stickman_stand": ((0.52, 0.05), (0.68, 0.04), (0.56, 0.04), (0.56, 0.06), (0.47, 0.02), (0.61, 0.03),
                       (0.49, 0.04)),
    "kitchen_microwave": ((0.14, 0.13), (0.0, 0.0), (0.0, 0.0), (0.02, 0.02), (0.0, 0.0), (0.46, 0.18),
                          (0.67, 0.27)),
    "kitchen_light": ((0.18, 0.12), (1.0, 0.0), (0.66, 0.07), (0.04, 0.02), (0.0, 0.0), (0.0, 0.0), (0.43, 0.19)),
    "kitchen_burner": ((0.14, 0.07), (0.43, 0.14), (0.02, 0.02), (0.02, 0.02), (0.0, 0.0), (0.28, 0.08),
                       (0.67, 0.14)),
    "kitchen_slide": ((0.16, 0.1), (0.0, 0.0), (0.0, 0.0), (0.06, 0.04), (0.0, 0.0), (1.0, 0.0), (1.0, 0.0)),
}
TABLE5: dict[str, dict[str, tuple[float, float]]] = {
    task: dict(zip(_T5_ORDER, cells)) for task, cells in _T5.items()}
"""task -> column -> (mean, standard error): paper Table 5 (appendix F)."""

TABLE5_OVERALL: dict[str, tuple[float, float]] = dict(zip(_T5_ORDER, (
    (0.30, 0.04), (0.38, 0.02), (0.28, 0.02), (0.28, 0.02), (0.23, 0.02), (0.49, 0.04), (0.73, 0.05))))
"""Table 5's "overall" row (the mean over its 14 tasks)."""

TABLE1: dict[str, dict[str, float]] = {
    domain: dict(zip(_T5_ORDER, row)) for domain, row in {
        "walker": (0.43, 0.50, 0.39, 0.47, 0.41, 0.74, 0.91),
        "cheetah": (0.37, -0.01, -0.01, 0.15, -0.01, 0.34, 0.74),
        "quadruped": (0.26, 0.31, 0.41, 0.31, 0.31, 0.44, 0.77),
        "stickman": (0.38, 0.48, 0.26, 0.42, 0.37, 0.41, 0.54),
        "kitchen": (0.15, 0.36, 0.17, 0.04, 0.00, 0.43, 0.69),
        "overall": (0.30, 0.38, 0.28, 0.28, 0.23, 0.49, 0.73),
    }.items()}
"""domain (or "overall") -> column -> mean normalized score: paper Table 1 (section 4.1), 5 seeds."""

DOMAIN_ORDER = ("walker", "cheetah", "quadruped", "stickman", "kitchen")


def paper_cell(task: str, column: str) -> tuple[float, float] | None:
    """``(mean, standard error)`` of Table 5 for ``task`` and ``column``, or None when the paper has none."""
    return TABLE5.get(task, {}).get(column)


__all__ = ["COLUMNS", "LABELS", "TABLE5", "TABLE5_OVERALL", "TABLE1", "DOMAIN_ORDER", "paper_cell"]
