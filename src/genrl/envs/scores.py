"""Random and expert reference returns per task, and score normalisation (paper Table 3; official
``tools/task_scores.py``).

``normalized_score(task, ret) = (ret - random) / (expert - random)``: 0 is a random agent, 1 an expert.
Returns are episode sums over 500 agent steps (action repeat 2) for DMC tasks, and 0/1 success for kitchen.
"""

from __future__ import annotations

# task -> (random return, expert return), from the paper's Table 3 / the official ``task_scores.py``.
SCORES: dict[str, tuple[float, float]] = {
    "walker_run": (30, 770), "walker_walk": (45, 960), "walker_stand": (150, 970),
    "walker_one_foot": (20, 955), "walker_high_kick": (25, 960), "walker_lying_down": (170, 975),
    "walker_sit_knees": (100, 945), "walker_lunge_pose": (150, 945), "walker_flipping": (20, 720),
    "quadruped_run": (10, 930), "quadruped_walk": (10, 960), "quadruped_stand": (15, 990),
    "quadruped_jump": (15, 875), "quadruped_two_legs": (14, 875), "quadruped_lie_down": (750, 965),
    "cheetah_run": (9, 890), "cheetah_standing": (5, 930), "cheetah_lying_down": (430, 920),
    "stickman_run": (25, 830), "stickman_walk": (35, 960), "stickman_stand": (70, 970),
    "stickman_flipping": (45, 790), "stickman_one_foot": (20, 865), "stickman_high_kick": (55, 920),
    "stickman_lying_down": (380, 965), "stickman_legs_up": (115, 935), "stickman_sit_knees": (40, 966),
    "stickman_lunge_pose": (100, 950), "stickman_headstand": (180, 955), "stickman_boxing": (80, 920),
    "stickman_hands_up": (5, 830),
    "kitchen_microwave": (0, 1), "kitchen_light": (0, 1), "kitchen_burner": (0, 1), "kitchen_slide": (0, 1),
}


def normalized_score(task: str, episode_return: float) -> float:
    """Min-max normalise an episode return with the paper's random/expert references.

    Args:
        task: full task id, e.g. ``"walker_walk"``.
        episode_return: undiscounted episode return (sum of rewards over the episode).

    Returns:
        ``(episode_return - random) / (expert - random)`` as a float (may be < 0 or > 1).

    Raises:
        KeyError: the task has no reference scores (the message lists those that do).
    """
    if task not in SCORES:
        raise KeyError(f"no reference scores for task {task!r}; tasks with scores: {', '.join(sorted(SCORES))}")
    lo, hi = SCORES[task]
    return (float(episode_return) - lo) / (hi - lo)
