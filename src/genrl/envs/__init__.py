"""Embodied environments of GenRL: walker, cheetah, quadruped, Stickman (ours) and Franka kitchen.

Every task is a ``gymnasium.Env`` with observation ``{"image": uint8 [64, 64, 3], "state": float32 [D]}``,
actions in ``[-1, 1]``, action repeat 2, and ``info["physics"]`` / ``info["rewards"]`` (see ``core.py``).
"""

from genrl.envs.rendering import RenderSettings, ensure_headless_gl

ensure_headless_gl()  # before anything imports dm_control / mujoco rendering

from genrl.envs.registry import PROMPTS, gym_id, list_tasks, make, register_gymnasium, split_task
from genrl.envs.scores import SCORES, normalized_score

__all__ = ["PROMPTS", "RenderSettings", "SCORES", "gym_id", "list_tasks", "make", "normalized_score",
           "register_gymnasium", "split_task"]
