"""Task registry: ``make("walker_walk")``, the task list with prompts, and Gymnasium ids ``genrl/<task>-v0``.

A task id is ``f"{domain}_{task}"`` (the domain name has no underscore). Domains are imported lazily so that
listing tasks never builds physics or imports gymnasium-robotics.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym

from genrl.envs.rendering import RenderSettings
from genrl.envs.scores import SCORES

# domain -> module defining ``DOMAIN`` (an object with ``name``, ``tasks`` and ``make_env``).
DOMAIN_MODULES = {
    "walker": "genrl.envs.walker",
    "cheetah": "genrl.envs.cheetah",
    "quadruped": "genrl.envs.quadruped",
    "stickman": "genrl.envs.stickman",
    "kitchen": "genrl.envs.kitchen",
}

# The paper's Table 3 prompts (official ``tools/genrl_utils.py`` TASK2PROMPT, latest revision). The paper's spelling
# "lunge pose" is used instead of the code's literal "lunge_pose".
PROMPTS: dict[str, str] = {
    "quadruped_run": "spider running fast", "quadruped_walk": "spider walking fast",
    "quadruped_stand": "spider standing", "quadruped_jump": "spider jumping",
    "quadruped_two_legs": "on two legs", "quadruped_lie_down": "lying down",
    "cheetah_run": "running like a quadruped", "cheetah_flipping": "quadruped rotating flips",
    "cheetah_standing": "standing like a human", "cheetah_lying_down": "lying down",
    "stickman_walk": "robot walk fast clean", "stickman_run": "robot run fast clean",
    "stickman_stand": "standing up", "stickman_flipping": "doing flips", "stickman_one_foot": "stand on one foot",
    "stickman_high_kick": "stand up and kick", "stickman_lying_down": "lying down horizontally",
    "stickman_legs_up": "lifting legs up while lying down", "stickman_sit_knees": "praying",
    "stickman_lunge_pose": "lunge pose", "stickman_headstand": "headstand", "stickman_boxing": "punch",
    "stickman_hands_up": "standing with the hands up",
    "walker_walk": "walk fast clean", "walker_run": "run fast clean", "walker_stand": "standing up straight",
    "walker_flipping": "doing backflips", "walker_one_foot": "stand on one foot",
    "walker_high_kick": "stand up and kick", "walker_lying_down": "lying down horizontally",
    "walker_sit_knees": "praying", "walker_lunge_pose": "lunge pose", "walker_legs_up": "lying down with feet up",
    "walker_headstand": "headstand", "walker_arabesque": "arabesque position",
    "kitchen_microwave": "opening the microwave fully open", "kitchen_light": "switch light on",
    "kitchen_burner": "switch on red burner", "kitchen_slide": "slide cabinet above the knobs",
}


def domain(name: str) -> Any:
    """Return the domain object (``DomainSpec`` or the kitchen domain) for ``name``.

    Raises:
        ValueError: unknown domain (lists the valid ones).
    """
    if name not in DOMAIN_MODULES:
        raise ValueError(f"unknown domain {name!r}; valid domains: {', '.join(DOMAIN_MODULES)}")
    return importlib.import_module(DOMAIN_MODULES[name]).DOMAIN


def split_task(task_id: str) -> tuple[str, str]:
    """``"walker_one_foot" -> ("walker", "one_foot")``.

    Raises:
        ValueError: malformed id or unknown domain/task; the message lists the valid task ids.
    """
    name, _, task = task_id.partition("_")
    if name not in DOMAIN_MODULES or not task:
        raise ValueError(f"unknown task {task_id!r}; valid tasks: {', '.join(list_tasks())}")
    if task not in domain(name).tasks:
        raise ValueError(f"unknown task {task_id!r}; valid {name} tasks: "
                         f"{', '.join(f'{name}_{t}' for t in domain(name).tasks)}")
    return name, task


def list_tasks(domain_name: str | None = None) -> list[str]:
    """All task ids, optionally of one domain, in registry order."""
    names = [domain_name] if domain_name else list(DOMAIN_MODULES)
    return [f"{n}_{t}" for n in names for t in domain(n).tasks]


RENDER_MODES = ("rgb_array",)


def make(task_id: str, seed: int | None = None, render: RenderSettings | None = RenderSettings(),
         action_repeat: int = 2, render_mode: str | None = "rgb_array") -> gym.Env:
    """Build the pixel environment of a task.

    Args:
        task_id: e.g. ``"walker_walk"``, ``"stickman_hands_up"``, ``"kitchen_microwave"``.
        seed: initial-state seed (``None``: random).
        render: :class:`RenderSettings`, or ``None`` for a state-only environment (no image).
        action_repeat: control steps per agent step (GenRL: 2).
        render_mode: Gymnasium's render mode: ``"rgb_array"`` (``env.render()`` returns the last frame, uint8
            ``[size, size, 3]``; what ``gymnasium.wrappers.RecordVideo`` needs) or ``None`` (recorded in
            ``env.render_mode``; the observations and ``render()`` are the same).

    Raises:
        ValueError: unknown task (the message lists the valid task ids) or a render mode other than those.
    """
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"{task_id}: render_mode must be one of {list(RENDER_MODES)} or None, got {render_mode!r}")
    name, task = split_task(task_id)
    env = domain(name).make_env(task, seed=seed, render=render, action_repeat=action_repeat)
    env.render_mode = render_mode
    return env


def gym_id(task_id: str) -> str:
    """Gymnasium id of a task: ``genrl/<task_id>-v0``."""
    return f"genrl/{task_id}-v0"


def register_gymnasium() -> None:
    """Register every task with Gymnasium (``gymnasium.make("genrl/walker_walk-v0", render_mode="rgb_array")``).

    ``spec.max_episode_steps`` is the task's episode length in agent steps (after action repeat: 500 for the DMC
    domains, 140 for kitchen), the step at which the environment itself truncates; Gymnasium's passive
    environment checker is on. Idempotent.
    """
    for task_id in list_tasks():
        if gym_id(task_id) not in gym.registry:
            steps = int(domain(split_task(task_id)[0]).episode_steps)
            gym.register(id=gym_id(task_id), entry_point="genrl.envs.registry:make", kwargs={"task_id": task_id},
                         max_episode_steps=steps)


def reference_scores(task_id: str) -> tuple[float, float] | None:
    """``(random, expert)`` returns of the paper's Table 3, or None if the task has none."""
    return SCORES.get(task_id)
