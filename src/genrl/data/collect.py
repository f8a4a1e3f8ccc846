"""Offline dataset collection: exploration episodes plus task-expert episodes, rendered by parallel workers.

GenRL's datasets are reward-free and language-free pixel data mixing *unstructured* exploration data with the
*structured* replay data of agents that learned a few tasks (paper section 4.1 and Table 4). We generate both:

* exploration (``source="random"``, ``"smooth"``, ``"perturbed"``): uniform random actions; temporally smoothed
  random actions (``a_t = 0.8 a_{t-1} + 0.2 u_t`` rescaled, longer coherent motions); and perturbed experts that
  switch between the domain's task experts every 25-150 steps with Gaussian action noise of several levels
  (0.3, 0.6, 1.0), to cover many states (falls, get-ups, transitions between behaviours).
* task data (``source="expert"``): each available expert at several points of its training (snapshots at
  25/50/100 % of its SAC run, see :mod:`genrl.data.experts`) with small action noise (0.1), like the learning
  progress held in the paper's agent replay buffers.
* kitchen task data (``source="scripted"``, ``"scripted-stop"``, ``"scripted-miss"``): scripted inverse-kinematics
  attempts at the four kitchen tasks (:mod:`genrl.data.kitchen_scripts`) with action noise 0.1, because
  exploration alone barely moves the kitchen objects. Per task a cycle of 8 episodes: 6 full attempts, one that
  stops partway and one that aims off the handle (25 % partial attempts, which leave the task unsolved). With
  the default ``expl_fraction`` a kitchen dataset is 50 % exploration and 12.5 % per task.

The plan is a deterministic function of (seed, episode index): re-running the same command skips the
episodes already on disk (atomic writes: a crash loses at most the episodes in progress) and a larger
``--frames`` only appends episodes.

Usage::

    genrl collect walker --out data/walker --frames 100000 --workers 2
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing as mp
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from genrl.data.episode import episode_from_steps, save_episode
from genrl.data.experts import ExpertPolicy, find_experts
from genrl.data.kitchen_scripts import SCRIPTED_NOISE, KitchenScriptedPolicy
from genrl.data.kitchen_scripts import SOURCES as SCRIPTED_SOURCES

EXPLORATION_KINDS = ("random", "smooth", "perturbed-0.3", "perturbed-0.6", "perturbed-1.0")
EXPERT_NOISE = 0.1
# Domains whose task data are scripted attempts (genrl.data.kitchen_scripts), and the per-task cycle of sources.
SCRIPTED_DOMAINS = ("kitchen",)
SCRIPTED_CYCLE = ("scripted", "scripted", "scripted", "scripted-stop",
                  "scripted", "scripted", "scripted", "scripted-miss")
TASK_SOURCES = ("expert",) + SCRIPTED_SOURCES  # episodes that attempt the job's task
POLICIES = {"random": "uniform random", "smooth": "smoothed random (0.8)", "perturbed": "switching experts + noise",
            "expert": "SAC expert", "scripted": "scripted IK controller",
            "scripted-stop": "scripted IK controller, stops partway",
            "scripted-miss": "scripted IK controller, aims off the handle"}


@dataclasses.dataclass(frozen=True)
class Job:
    """One episode to collect.

    Attributes:
        index: position in the plan (also the file-name prefix).
        domain: domain name.
        task: task of the environment (its reward is stored as ``reward``; all tasks' rewards are stored too).
        source: ``random`` | ``smooth`` | ``perturbed`` | ``expert`` | ``scripted`` | ``scripted-stop`` |
            ``scripted-miss`` (kitchen: :mod:`genrl.data.kitchen_scripts`).
        noise: Gaussian action-noise standard deviation (perturbed / expert / scripted).
        snapshot: expert snapshot percentage (expert source), else None.
        experts: expert actor files the policy uses (one for ``expert``, all the domain's for ``perturbed``).
        seed: environment and policy seed.
    """

    index: int
    domain: str
    task: str
    source: str
    noise: float
    snapshot: int | None
    experts: tuple[str, ...]
    seed: int

    @property
    def name(self) -> str:
        """Episode file stem, e.g. ``000017-expert-walker_walk-100`` or ``000018-scripted-kitchen_microwave``."""
        if self.source in SCRIPTED_SOURCES:
            return f"{self.index:06d}-{self.source}-{self.domain}_{self.task}"
        tag = {"expert": f"expert-{self.task}-{self.snapshot:03d}" if self.snapshot is not None else "expert",
               "perturbed": f"perturbed-{self.noise:g}"}.get(self.source, self.source)
        return f"{self.index:06d}-{tag}"

    def meta(self) -> dict:
        """Manifest entry (the dataset adds ``length``)."""
        attempt = self.source in TASK_SOURCES
        subset = f"{self.domain} {self.task}" if attempt else f"{self.domain} expl"
        return {"subset": subset, "source": self.source, "task": self.task if attempt else None,
                "env_task": self.task, "noise": self.noise, "snapshot": self.snapshot, "seed": self.seed,
                "policy": POLICIES[self.source]}


def plan(domain: str, n_episodes: int, seed: int = 0, expl_fraction: float = 0.5,
         experts_dir: str | Path | None = None) -> list[Job]:
    """The deterministic collection plan of the first ``n_episodes`` episodes of a domain.

    Episode ``i`` is exploration iff ``floor((i + 1) f) > floor(i f)`` (``f = expl_fraction``), so the plan only
    grows at the end when ``n_episodes`` grows. The other episodes cycle through the task jobs: every snapshot
    of every expert, then (kitchen) :data:`SCRIPTED_CYCLE` for each task in turn. Without task jobs every
    episode is random/smooth exploration.
    """
    from genrl.envs.registry import domain as get_domain

    experts = find_experts(domain, experts_dir)          # task -> {pct: path}
    tasks = list(get_domain(domain).tasks)
    expl_kinds = EXPLORATION_KINDS if experts else EXPLORATION_KINDS[:2]
    # (task, source, noise, snapshot, expert files)
    task_jobs = [(task.split("_", 1)[1], "expert", EXPERT_NOISE, pct, (str(path),))
                 for task, snaps in sorted(experts.items()) for pct, path in sorted(snaps.items())]
    if domain in SCRIPTED_DOMAINS:
        task_jobs += [(task, source, SCRIPTED_NOISE, None, ()) for source in SCRIPTED_CYCLE for task in tasks]
    all_final = tuple(str(snaps[max(snaps)]) for _, snaps in sorted(experts.items()))
    f = expl_fraction if task_jobs else 1.0
    jobs = []
    for i in range(n_episodes):
        job_seed = seed * 1_000_003 + i
        n_expl_before = math.floor(i * f)
        if math.floor((i + 1) * f) > n_expl_before:
            kind = expl_kinds[n_expl_before % len(expl_kinds)]
            source, _, noise = kind.partition("-")
            jobs.append(Job(i, domain, tasks[0], source, float(noise or 0.0), None,
                            all_final if source == "perturbed" else (), job_seed))
        else:
            task, source, noise, pct, paths = task_jobs[(i - n_expl_before) % len(task_jobs)]
            jobs.append(Job(i, domain, task, source, noise, pct, paths, job_seed))
    return jobs


class _Policy:
    """Action source of a job (runs inside a worker)."""

    def __init__(self, job: Job, action_dim: int):
        self.job, self.action_dim = job, action_dim
        self.rng = np.random.default_rng(job.seed)
        self.experts = [ExpertPolicy.load(p) for p in job.experts]
        self.prev = np.zeros(action_dim)
        self.current, self.switch_at = 0, 0

    def __call__(self, step: int, state: np.ndarray) -> np.ndarray:
        job, rng = self.job, self.rng
        if job.source == "random":
            return rng.uniform(-1, 1, self.action_dim)
        if job.source == "smooth":
            # AR(1) with the stationary std of a uniform action (1/sqrt(3)).
            self.prev = 0.8 * self.prev + math.sqrt(1 - 0.8 ** 2) * rng.normal(0, 1 / math.sqrt(3), self.action_dim)
            return np.clip(self.prev, -1, 1)
        if job.source == "perturbed" and step >= self.switch_at:
            self.current = int(rng.integers(len(self.experts)))
            self.switch_at = step + int(rng.integers(25, 151))
        action = self.experts[self.current].act(state)
        return np.clip(action + job.noise * rng.normal(size=self.action_dim), -1, 1)


_ENVS: dict = {}


def run_job(job: Job, episodes_dir: str) -> tuple[str, dict, int]:
    """Collect one episode and write it to ``episodes_dir/<job.name>.npz``. Returns ``(name, meta, length)``.

    Environments are cached per worker process (one OpenGL context per task).
    """
    import torch

    from genrl.envs import make

    torch.set_num_threads(1)
    task_id = f"{job.domain}_{job.task}"
    if task_id not in _ENVS:
        _ENVS[task_id] = make(task_id)
    env = _ENVS[task_id]
    obs, info = env.reset(seed=job.seed)
    if job.source in SCRIPTED_SOURCES:
        policy = KitchenScriptedPolicy(env.model, job.task, job.source, job.noise, job.seed)
    else:
        policy = _Policy(job, env.action_space.shape[0])
    frames, actions, rewards, states, infos = [obs["image"]], [np.zeros(env.action_space.shape)], [0.0], \
        [obs["state"]], [info]
    done, step = False, 0
    while not done:
        action = policy(step, obs["state"])
        obs, reward, terminated, truncated, info = env.step(action)
        frames.append(obs["image"])
        actions.append(action)
        rewards.append(reward)
        states.append(obs["state"])
        infos.append(info)
        done, step = terminated or truncated, step + 1
    episode = episode_from_steps(frames, actions, rewards, states, infos, terminal=terminated)
    save_episode(Path(episodes_dir) / f"{job.name}.npz", episode)
    return job.name, job.meta(), len(frames)


def collect(domain: str, out: str | Path, frames: int, workers: int = 1, seed: int = 0,
            expl_fraction: float = 0.5, experts_dir: str | Path | None = None, progress: bool = True) -> dict:
    """Collect (or complete) a dataset of at least ``frames`` entries for ``domain`` in ``out``.

    Returns a summary dict (episodes collected now, skipped, frames, seconds, frames/s).

    Raises:
        ValueError: ``out`` holds a dataset of another domain, or bad arguments.
    """
    from tqdm import tqdm

    from genrl.data.dataset import Dataset
    from genrl.envs.registry import domain as get_domain

    if frames <= 0 or workers <= 0:
        raise ValueError(f"frames and workers must be positive, got frames={frames}, workers={workers}")
    spec = get_domain(domain)
    probe = spec.make_env(next(iter(spec.tasks)))
    action_dim, ep_len = probe.action_space.shape[0], probe.episode_steps + 1
    probe.close()
    dataset = Dataset.create(out, domain, action_dim)
    jobs = plan(domain, math.ceil(frames / ep_len), seed, expl_fraction, experts_dir)
    episodes_dir = Path(out) / "episodes"
    pending = []
    for job in jobs:
        if dataset.has(job.name):
            continue
        if (episodes_dir / f"{job.name}.npz").is_file():   # written but not registered before a crash
            dataset.register(job.name, job.meta())
            continue
        pending.append(job)
    skipped = len(jobs) - len(pending)
    t0, done_frames = time.time(), 0
    bar = tqdm(total=len(pending) * ep_len, unit="frame", desc=f"collect {domain}", disable=not progress)
    try:
        for name, meta, length in _run_all(pending, str(episodes_dir), workers):
            dataset.register(name, meta)
            done_frames += length
            bar.update(length)
            bar.set_postfix(fps=f"{done_frames / max(time.time() - t0, 1e-9):.0f}")
    finally:
        bar.close()
    seconds = time.time() - t0
    return {"domain": domain, "collected": len(pending), "skipped": skipped, "frames": dataset.frames(),
            "seconds": round(seconds, 1), "frames_per_s": round(done_frames / seconds, 1) if seconds else None}


def _run_all(jobs: list[Job], episodes_dir: str, workers: int) -> Iterator[tuple[str, dict, int]]:
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            yield run_job(job, episodes_dir)
        return
    ctx = mp.get_context("spawn")  # fresh processes: no inherited OpenGL/MuJoCo state
    with ctx.Pool(workers) as pool:
        yield from pool.imap_unordered(_run_job_star, [(job, episodes_dir) for job in jobs], chunksize=1)


def _run_job_star(args: tuple[Job, str]) -> tuple[str, dict, int]:
    return run_job(*args)
