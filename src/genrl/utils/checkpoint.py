"""Crash-safe, pickle-free training checkpoints (safetensors + JSON) shared by every trainer.

A checkpoint is a folder::

    ckpt/
      model.safetensors          one per module: its ``state_dict()``
      model.optim.safetensors    one per optimizer: tensor state, keyed ``"<param index>.<key>"``
      model.optim.json           the optimizer's non-tensor parts: param_groups, scalar state (e.g. ``step`` ints)
      config.json                the run's configuration, as given
      state.json                 written last: step, RNG states, ``extra``, and the sha256 of every other file

Saving writes a complete new checkpoint into ``ckpt.tmp-<pid>`` beside the destination and then swaps it in
(``ckpt`` -> ``ckpt.old``, ``ckpt.tmp-<pid>`` -> ``ckpt``, delete ``ckpt.old``). A crash at any moment leaves
either the previous or the new checkpoint complete: if it strikes between the two renames, ``ckpt`` is missing and
:func:`load_checkpoint` / :func:`has_checkpoint` / :func:`read_config` use ``ckpt.old``. Loading verifies every
file's sha256 before touching any module, so a truncated or altered file is reported by name instead of being
half-loaded. Nothing is pickled and ``torch.load`` is never used.

Usage::

    from genrl.utils.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint

    model, opt = WorldModel(cfg), torch.optim.Adam(...)
    rng = np.random.default_rng(seed)
    step = 0
    if has_checkpoint(out / "checkpoint"):
        state = load_checkpoint(out / "checkpoint", {"model": model}, {"model": opt}, rng=rng)
        step = state["step"]              # state["extra"], state["config"] are there too
    while step < total:
        ...
        step += 1
        if step % save_every == 0:
            save_checkpoint(out / "checkpoint", {"model": model}, {"model": opt}, step, config=asdict(cfg),
                            extra={"history": history}, rng=rng)

Module and optimizer names become file names: letters, digits, ``_`` and ``-`` only.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from genrl.utils.checkpoint_codec import (CheckpointError, from_json, module_tensors, optimizer_parts,
                                           optimizer_state, parse_safetensors, restore_rng, rng_state, to_json,
                                           write_json_file, write_safetensors)
from genrl.utils.io import write_json

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "has_checkpoint", "read_config"]

FORMAT = "genrl-checkpoint"
VERSION = 1
STATE_FILE = "state.json"
CONFIG_FILE = "config.json"
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")


# ----------------------------------------------------------------------------------------------------------------
# paths


def _old_path(path: Path) -> Path:
    return path.with_name(path.name + ".old")


def _tmp_path(path: Path, pid: int | None = None) -> Path:
    return path.with_name(f"{path.name}.tmp-{os.getpid() if pid is None else pid}")


def _resolve(path: str | os.PathLike) -> Path:
    """The folder holding the newest complete checkpoint: ``path``, or ``path.old`` if a swap was interrupted."""
    path = Path(path)
    old = _old_path(path)
    if not path.exists() and (old / STATE_FILE).is_file():
        return old
    return path


def _fsync(path: Path) -> None:
    """Flush a file or folder to disk (best effort: some file systems refuse folder fsync)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------------------------------------------
# save


def _check_names(kind: str, names) -> None:
    for n in names:
        if not isinstance(n, str) or not _NAME_RE.match(n):
            raise CheckpointError(f"{kind} name {n!r} is not usable as a file name (letters, digits, _ and - only)")


def _replaceable(path: Path) -> bool:
    """True if ``path`` is absent, empty, or looks like a checkpoint folder (state.json + .json/.safetensors)."""
    if not path.exists():
        return True
    if not path.is_dir():
        return False
    entries = list(path.iterdir())
    if not entries:
        return True
    return (path / STATE_FILE).is_file() and all(
        e.is_file() and e.suffix in (".json", ".safetensors") for e in entries)


def _remove_stale_tmp(path: Path) -> None:
    """Delete ``path.tmp-<pid>`` folders left by this process or by crashed ones (pid no longer running)."""
    for tmp in path.parent.glob(f"{glob.escape(path.name)}.tmp-*"):
        pid_s = tmp.name.rsplit("-", 1)[-1]
        if not pid_s.isdigit():
            continue
        pid = int(pid_s)
        if pid != os.getpid():
            try:
                os.kill(pid, 0)
                continue  # still running: another process is saving there
            except ProcessLookupError:
                pass
            except OSError:  # exists but belongs to someone else
                continue
        shutil.rmtree(tmp, ignore_errors=True)


def save_checkpoint(dir: str | os.PathLike, modules: Mapping[str, nn.Module],
                    optimizers: Mapping[str, torch.optim.Optimizer], step: int, config: Mapping[str, Any],
                    extra: Mapping[str, Any] | None = None, rng: np.random.Generator | None = None) -> Path:
    """Write a complete checkpoint to ``dir``, replacing the previous one atomically.

    Args:
        dir: checkpoint folder (created; its parent too).
        modules: ``name -> nn.Module``; each ``state_dict()`` goes to ``{name}.safetensors``.
        optimizers: ``name -> Optimizer``; tensor state to ``{name}.optim.safetensors``, the rest (param_groups,
            scalar state) to ``{name}.optim.json``.
        step: training step (stored as an int).
        config: the run's configuration, written to ``config.json`` (JSON types, numpy scalars/arrays, paths).
        extra: further JSON-serializable values (e.g. loss history), returned by :func:`load_checkpoint`.
        rng: numpy ``Generator`` whose ``bit_generator.state`` is stored. The torch CPU (and CUDA, when available)
            RNG and Python's ``random`` state are always stored.

    Returns:
        ``Path(dir)``.

    Raises:
        CheckpointError: a bad module/optimizer name, a non-tensor state_dict entry, a value that is not
            JSON-serializable, or ``dir`` exists and is not a checkpoint folder (it is never replaced then).
        OSError: the disk write failed; the previous checkpoint is left intact.
    """
    path = Path(dir)
    _check_names("module", modules)
    _check_names("optimizer", optimizers)
    if not _replaceable(path):
        raise CheckpointError(f"{path} exists and is not a checkpoint folder; refusing to replace it")
    config_json = to_json(dict(config), "config")  # fail before writing anything
    extra_json = to_json(dict(extra or {}), "extra")
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(path)
    tmp = _tmp_path(path)
    tmp.mkdir()
    try:
        files: dict[str, dict[str, Any]] = {}

        def record(fname: str) -> None:
            data = (tmp / fname).read_bytes()
            files[fname] = {"sha256": _sha256(data), "bytes": len(data)}
            _fsync(tmp / fname)

        for name, module in modules.items():
            write_safetensors(tmp / f"{name}.safetensors", module_tensors(name, module))
            record(f"{name}.safetensors")
        for name, opt in optimizers.items():
            tensors, doc = optimizer_parts(name, opt)
            write_safetensors(tmp / f"{name}.optim.safetensors", tensors)
            record(f"{name}.optim.safetensors")
            write_json_file(tmp / f"{name}.optim.json", doc, f"optimizer {name!r}")
            record(f"{name}.optim.json")
        write_json(tmp / CONFIG_FILE, config_json)
        record(CONFIG_FILE)
        state = {
            "format": FORMAT, "version": VERSION, "step": int(step),
            "modules": list(modules), "optimizers": list(optimizers),
            "rng": rng_state(rng), "extra": extra_json, "files": files,
        }
        write_json_file(tmp / STATE_FILE, state, "state")  # last: the commit marker
        _fsync(tmp / STATE_FILE)
        _fsync(tmp)
        # swap: the newest complete checkpoint is always at `path`, or at `path.old` between the two renames
        old = _old_path(path)
        if path.exists():
            if old.exists():
                shutil.rmtree(old)  # `path` is complete, so a leftover `.old` is stale
            os.rename(path, old)
        os.rename(tmp, path)
        _fsync(path.parent)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


# ----------------------------------------------------------------------------------------------------------------
# load


def _read_state(path: Path) -> dict:
    sfile = path / STATE_FILE
    if not path.is_dir():
        raise CheckpointError(f"no checkpoint at {path} (folder missing)")
    if not sfile.is_file():
        raise CheckpointError(f"{sfile} is missing: {path} is not a complete checkpoint")
    try:
        state = json.loads(sfile.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{sfile} is corrupted (not valid JSON: {exc})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{sfile} is not a {FORMAT} state file (an older or foreign checkpoint format)")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{sfile} has format version {state['version']}; this code reads up to {VERSION}")
    return state


def _read_verified(path: Path, state: dict, fname: str) -> bytes:
    """The bytes of ``fname``, checked against the sha256 recorded in state.json."""
    fpath = path / fname
    info = state.get("files", {}).get(fname)
    if info is None:
        raise CheckpointError(f"{fpath} is not listed in {path / STATE_FILE}")
    if not fpath.is_file():
        raise CheckpointError(f"{fpath} is missing from the checkpoint")
    data = fpath.read_bytes()
    if _sha256(data) != info["sha256"]:
        size = f"{len(data)} bytes, expected {info['bytes']}" if len(data) != info["bytes"] else \
            f"{len(data)} bytes, same size"
        raise CheckpointError(f"{fpath} is corrupted: sha256 mismatch ({size}); the file was truncated or "
                              f"modified after saving")
    return data


def _check_module(name: str, label: str, module: nn.Module, tensors: dict[str, torch.Tensor], strict: bool) -> None:
    own = module.state_dict()
    missing = [k for k in own if k not in tensors]
    unexpected = [k for k in tensors if k not in own]
    bad_shape = [f"{k}: checkpoint {tuple(tensors[k].shape)} vs module {tuple(own[k].shape)}"
                 for k in own if k in tensors and tuple(own[k].shape) != tuple(tensors[k].shape)]
    problems = []
    if bad_shape:
        problems.append("shape mismatch for " + "; ".join(bad_shape))
    if strict and missing:
        problems.append(f"keys missing from the checkpoint: {missing}")
    if strict and unexpected:
        problems.append(f"unexpected keys in the checkpoint: {unexpected}")
    if problems:
        raise CheckpointError(f"module {name!r} does not match {label}: " + "; ".join(problems))


def load_checkpoint(dir: str | os.PathLike, modules: Mapping[str, nn.Module],
                    optimizers: Mapping[str, torch.optim.Optimizer], rng: np.random.Generator | None = None,
                    strict: bool = True, restore_global_rng: bool = True) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` into ``modules`` and ``optimizers`` (in place).

    Every file is read and its sha256 checked, and every module/optimizer is checked against the stored
    tensors, before anything is modified: on error nothing has been loaded.

    Args:
        dir: checkpoint folder (``dir.old`` is used if ``dir`` is missing after an interrupted save).
        modules, optimizers: the same names as at save time; an empty ``optimizers`` loads weights only.
        rng: numpy ``Generator`` whose state is restored (it must use the same bit generator).
        strict: ``True``: the names and every module's keys must match exactly, and optimizer types too.
            ``False``: names absent from the checkpoint are skipped (with a warning), checkpoint entries not asked
            for are ignored, and missing/unexpected module keys are allowed; shapes must still match.
        restore_global_rng: restore the torch CPU/CUDA and Python ``random`` states.

    Returns:
        The contents of ``state.json`` (``step``, ``extra``, ``rng``, ``files``, ...) plus ``config`` (the
        contents of ``config.json``) and ``path`` (the folder actually read).

    Raises:
        CheckpointError: no checkpoint; a missing file; a corrupted file (sha256 mismatch, unreadable
            safetensors/JSON); a module name, key or shape mismatch (the keys are named); an optimizer
            parameter-group or type mismatch; an rng without a stored state or of another bit generator.
    """
    path = _resolve(dir)
    state = _read_state(path)
    saved_modules, saved_opts = list(state.get("modules", [])), list(state.get("optimizers", []))
    for kind, asked, saved in (("module", modules, saved_modules), ("optimizer", optimizers, saved_opts)):
        absent = [n for n in asked if n not in saved]
        # asking for no optimizer at all is a weights-only load (inference): the saved optimizers are not needed
        unasked = [n for n in saved if n not in asked] if (asked or kind == "module") else []
        if strict and (absent or unasked):
            raise CheckpointError(f"{kind} names do not match {path}: the checkpoint has {saved}, asked for "
                                  f"{list(asked)}" + (f"; missing from the checkpoint: {absent}" if absent else ""))
        if absent:
            warnings.warn(f"{kind}(s) {absent} not in checkpoint {path}; left as they are (strict=False)",
                          stacklevel=2)

    # 1. read and verify everything (files of entries not asked for are verified too: the checkpoint is one unit)
    config = json.loads(_read_verified(path, state, CONFIG_FILE))
    module_tensors: dict[str, dict[str, torch.Tensor]] = {}
    for name in saved_modules:
        fname = f"{name}.safetensors"
        data = _read_verified(path, state, fname)
        if name in modules:
            module_tensors[name] = parse_safetensors(str(path / fname), data)
    opt_docs: dict[str, tuple[str, dict, dict]] = {}
    for name in saved_opts:
        tname, jname = f"{name}.optim.safetensors", f"{name}.optim.json"
        tdata, jdata = _read_verified(path, state, tname), _read_verified(path, state, jname)
        if name not in optimizers:
            continue
        tensors = parse_safetensors(str(path / tname), tdata)
        try:
            doc = json.loads(jdata)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path / jname} is corrupted (not valid JSON: {exc})") from exc
        opt_docs[name] = (str(path / tname), tensors, doc)
    for name, tensors in module_tensors.items():
        _check_module(name, str(path / f"{name}.safetensors"), modules[name], tensors, strict)
    opt_states = {name: optimizer_state(name, label, optimizers[name], tensors, doc, strict)
                  for name, (label, tensors, doc) in opt_docs.items()}

    # 2. apply
    for name, tensors in module_tensors.items():
        with torch.no_grad():
            modules[name].load_state_dict(tensors, strict=strict)
    for name, sd in opt_states.items():
        try:
            optimizers[name].load_state_dict(sd)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f"optimizer {name!r}: cannot load {path / f'{name}.optim.safetensors'}: "
                                  f"{exc}") from exc
    restore_rng(state.get("rng", {}), rng, restore_global_rng)
    state["extra"] = from_json(state.get("extra", {}))
    state["config"] = config
    state["path"] = str(path)
    return state


def has_checkpoint(dir: str | os.PathLike) -> bool:
    """True if ``dir`` (or ``dir.old`` after an interrupted save) holds a committed checkpoint (a state.json).

    File hashes are not verified here; :func:`load_checkpoint` does that and raises on a damaged checkpoint
    (a damaged checkpoint still counts as present, so a trainer does not silently start over).
    """
    return (_resolve(dir) / STATE_FILE).is_file()


def read_config(dir: str | os.PathLike) -> dict:
    """The ``config`` dict stored with a checkpoint (sha256-verified).

    Raises:
        CheckpointError: no checkpoint, or config.json missing/corrupted.
    """
    path = _resolve(dir)
    state = _read_state(path)
    data = _read_verified(path, state, CONFIG_FILE)
    return json.loads(data)
