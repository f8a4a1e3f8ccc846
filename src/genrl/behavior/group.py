"""A group of behavior runs trained in one process (issue 16, "K behaviors per process"): its manifest
``OUT/group.json``, its two-phase checkpoint commit and its recovery on resume (:mod:`genrl.behavior.train_group`
trains the group; each member is an ordinary ``genrl behave`` run folder).

``OUT/group.json``::

    {"kind": "genrl-behavior-group", "members": ["walker_stand", "walker_walk"],   # relative to OUT if inside
     "names": [...], "tasks": [...], "prompts": [...], "seeds": [...], "step": 500, "next": null}

``step`` is the update count of the group's last complete save: every member's ``checkpoint/`` holds that step.
A save is a two-phase commit, so that an interruption at any moment (Ctrl-C, a killed job) cannot leave the members
at different steps:

1. every member's checkpoint is written beside its current one, into ``checkpoint.next`` (itself atomic:
   :func:`genrl.utils.checkpoint.save_checkpoint`);
2. ``group.json`` gets ``"next": N`` (an atomic write: the commit point);
3. each ``checkpoint.next`` is swapped in (``checkpoint`` -> ``checkpoint.old``, ``checkpoint.next`` ->
   ``checkpoint``, ``checkpoint.old`` deleted; a reader between the two renames finds ``checkpoint.old``, as after
   an interrupted :func:`~genrl.utils.checkpoint.save_checkpoint`);
4. ``group.json`` gets ``"step": N, "next": null``.

:meth:`GroupCheckpoint.recover` (on resume) finishes a save interrupted after phase 2 (roll forward), discards one
interrupted before it (the ``checkpoint.next`` folders are deleted; the members stay at the previous step), and
then checks that every member's checkpoint is at ``step``. A member trained or replaced on its own since (e.g. by
a single ``genrl behave`` into its folder) is reported, never silently mixed in.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Sequence

from genrl.utils.checkpoint import CheckpointError, has_checkpoint
from genrl.utils.io import write_json
from genrl.utils.runtime import ResumeMismatchError, config_differences

GROUP_FILE = "group.json"
GROUP_KIND = "genrl-behavior-group"
NEXT = ".next"

__all__ = ["GROUP_FILE", "GROUP_KIND", "GroupCheckpoint", "checkpoint_step"]


def checkpoint_step(ckpt: Path) -> int | None:
    """The step of the complete checkpoint at ``ckpt`` (or at ``ckpt.old`` after an interrupted swap), or None."""
    if not has_checkpoint(ckpt):
        return None
    state = ckpt / "state.json"
    if not state.is_file():
        state = ckpt.with_name(ckpt.name + ".old") / "state.json"
    return int(json.loads(state.read_text())["step"])


def _swap_in(ckpt: Path) -> None:
    """Make ``ckpt.next`` the checkpoint ``ckpt`` (the swap of save_checkpoint; safe to repeat after a crash)."""
    nxt, old = ckpt.with_name(ckpt.name + NEXT), ckpt.with_name(ckpt.name + ".old")
    if nxt.is_dir():
        if ckpt.exists():
            if old.exists():
                shutil.rmtree(old)  # `ckpt` is complete, so a leftover `.old` is stale
            os.rename(ckpt, old)
        os.rename(nxt, ckpt)
    if (ckpt / "state.json").is_file():
        shutil.rmtree(old, ignore_errors=True)


class GroupCheckpoint:
    """The manifest and the checkpoint commit of a group in the folder ``out``.

    Args:
        out: the group folder (``group.json``). members: the members' run folders, in the group's order.
        info: extra manifest fields (``names``, ``tasks``, ``prompts``, ``seeds``: for people and the dashboard).
        ckpt: the checkpoint folder name inside a member folder.
    """

    def __init__(self, out: str | Path, members: Sequence[str | Path], info: dict | None = None,
                 ckpt: str = "checkpoint"):
        self.out = Path(out)
        self.members = [Path(m) for m in members]
        self.ckpts = [m / ckpt for m in self.members]
        self.info = dict(info or {})
        self.path = self.out / GROUP_FILE

    def _relative(self) -> list[str]:
        out = self.out.resolve()
        rel = []
        for m in self.members:
            m = m.resolve()
            rel.append(str(m.relative_to(out)) if m.is_relative_to(out) else str(m))
        return rel

    def manifest(self, step: int, nxt: int | None = None) -> dict:
        return {"kind": GROUP_KIND, "members": self._relative(), **self.info, "step": int(step),
                "next": None if nxt is None else int(nxt)}

    def stored(self) -> dict | None:
        """``out/group.json`` of a group already in the folder, or None."""
        return json.loads(self.path.read_text()) if self.path.is_file() else None

    def check_resume(self) -> None:
        """Refuse to resume a group with other members (or to put a group into a single run's folder).

        Raises:
            ResumeMismatchError: ``out`` holds a group of other members (in another order), or a single behavior
                run (its ``config.json``), or a member folder holds a checkpoint but ``out`` no group.
        """
        cfg = self.out / "config.json"
        if cfg.is_file():
            raise ResumeMismatchError(f"{self.out} holds a single run ({cfg}); give the group another --out")
        stored = self.stored()
        if stored is None:
            for ckpt in self.ckpts:
                step = checkpoint_step(ckpt)
                if step is not None:
                    raise ResumeMismatchError(f"{ckpt.parent} already holds a behavior run (step {step}) that is not "
                                              f"part of a group in {self.out} (no {GROUP_FILE}); use another --out")
            return
        diffs = config_differences(stored, {"members": self._relative()}, ("members",))
        if stored.get("kind") != GROUP_KIND or diffs:
            raise ResumeMismatchError(f"{self.out} holds a group with other members: {', '.join(diffs)}; use "
                                      "another --out, or the same tasks and prompts (in the same order) to resume")

    def staging(self, i: int) -> Path:
        """Where member ``i``'s checkpoint of the save in progress is written (phase 1)."""
        return self.ckpts[i].with_name(self.ckpts[i].name + NEXT)

    def start(self, step: int) -> None:
        """Write the manifest at ``step`` (a fresh group: 0; a recovered one: its step)."""
        write_json(self.path, self.manifest(step))

    def commit(self, step: int) -> None:
        """Phases 2-4 of the save of ``step``, after every member's :meth:`staging` checkpoint was written."""
        write_json(self.path, self.manifest(self.stored()["step"], nxt=step))
        for ckpt in self.ckpts:
            _swap_in(ckpt)
        write_json(self.path, self.manifest(step))

    def recover(self) -> int:
        """Finish or discard an interrupted save; the group's step (0: fresh, nothing saved yet).

        Raises:
            CheckpointError: a member's checkpoint is not at the group's step (named, with both steps).
        """
        stored = self.stored()
        if stored is None:
            step, nxt = 0, None
        else:
            step, nxt = int(stored["step"]), stored.get("next")
        if nxt is not None:  # interrupted after the commit point: roll forward
            for i, ckpt in enumerate(self.ckpts):
                staged = checkpoint_step(self.staging(i))
                if staged is not None and staged != nxt:
                    raise CheckpointError(f"{self.staging(i)} is at step {staged}, not at the group's step {nxt}")
                _swap_in(ckpt)
            step = int(nxt)
        else:  # interrupted before it (or not at all): the staged checkpoints are discarded
            for i in range(len(self.ckpts)):
                shutil.rmtree(self.staging(i), ignore_errors=True)
        bad = [f"{c.parent}: {'none' if s is None else s}" for c, s in
               ((c, checkpoint_step(c)) for c in self.ckpts) if (s or 0) != step]
        if bad:
            raise CheckpointError(f"the members of the group in {self.out} are not at its step {step} (checkpoint "
                                  f"steps: {'; '.join(bad)}): a member was trained or replaced on its own; restore "
                                  "it, or train the group into another --out")
        if stored is not None:
            self.start(step)
        return step
