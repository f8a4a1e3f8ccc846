"""Encoding of checkpoint contents without pickle: JSON values, safetensors tensors, optimizer and RNG states.

Used by :mod:`genrl.utils.checkpoint` (the folder format, atomic swap and verification live there):

* :func:`to_json` / :func:`from_json`: JSON-native values, numpy arrays tagged ``{"__ndarray__", "dtype"}``;
* :func:`module_tensors`: CPU, contiguous, untied copies of a module's ``state_dict``;
* :func:`optimizer_parts` / :func:`optimizer_state`: an optimizer state dict split into a safetensors part
  (``"<param index>.<key>"``) and a JSON part, and rebuilt with shape checks against the live optimizer;
* :func:`rng_state` / :func:`restore_rng`: torch CPU/CUDA, numpy ``Generator`` and Python RNG states as JSON.

Every error is a :class:`CheckpointError` naming the offending entry.
"""

from __future__ import annotations

import base64
import os
import random
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from genrl.utils.io import atomic_path, write_json

_GROUP_TENSOR_PREFIX = "param_groups."
# optimizer state buffers that always have their parameter's shape (checked on load)
_PARAM_SHAPED = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg", "acc_delta", "sum",
                 "grad_avg", "exp_inf", "ax", "prev"}


class CheckpointError(ValueError):
    """A checkpoint cannot be written or loaded: missing/corrupted file, or a model/optimizer mismatch."""


# ----------------------------------------------------------------------------------------------------------------
# JSON encoding (numpy arrays/scalars, paths, tuples)


def to_json(obj: Any, where: str) -> Any:
    """Convert ``obj`` to JSON-native values; numpy arrays become ``{"__ndarray__": [...], "dtype": ...}``."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise CheckpointError(f"{where}: dictionary key {k!r} is not a string or int (JSON keys only)")
            out[str(k)] = to_json(v, f"{where}.{k}")
        return out
    if isinstance(obj, (list, tuple)):
        return [to_json(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise CheckpointError(f"{where}: {type(obj).__name__} value is not JSON-serializable (checkpoints never "
                          f"pickle; store tensors in a module and other values as JSON types)")


def from_json(obj: Any) -> Any:
    """Inverse of :func:`to_json` for tagged numpy arrays."""
    if isinstance(obj, dict):
        if set(obj) == {"__ndarray__", "dtype"}:
            return np.array(obj["__ndarray__"], dtype=obj["dtype"])
        return {k: from_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_json(v) for v in obj]
    return obj


def write_json_file(path: Path, obj: Any, where: str) -> None:
    write_json(path, to_json(obj, where))


# ----------------------------------------------------------------------------------------------------------------
# tensors


def module_tensors(name: str, module: nn.Module) -> dict[str, torch.Tensor]:
    """CPU, contiguous copies of the state dict; tensors sharing storage (tied weights) are cloned apart."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, val in module.state_dict().items():
        if not torch.is_tensor(val):
            raise CheckpointError(f"module {name!r}: state_dict entry {key!r} is a {type(val).__name__}, not a "
                                  f"tensor (checkpoints store tensors only)")
        out[key] = cpu_tensor(val, seen)
    return out


def cpu_tensor(val: torch.Tensor, seen: set[int]) -> torch.Tensor:
    t = val.detach().cpu().contiguous()
    ptr = t.untyped_storage().data_ptr()
    if t.numel() and ptr in seen:
        t = t.clone()
    elif t.numel():
        seen.add(ptr)
    return t


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})


def parse_safetensors(label: str, data: bytes) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    try:
        return load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError for malformed files
        raise CheckpointError(f"{label}: not a readable safetensors file ({exc})") from exc


# ----------------------------------------------------------------------------------------------------------------
# optimizers


def optimizer_parts(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state dict into safetensors tensors and a JSON document."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    seen: set[int] = set()
    for pid, st in sd["state"].items():
        for key, val in st.items():
            where = f"optimizer {name!r} state[{pid}][{key!r}]"
            if torch.is_tensor(val):
                tensors[f"{pid}.{key}"] = cpu_tensor(val, seen)
            elif val is None or isinstance(val, (bool, int, float, np.generic)):
                scalars.setdefault(str(pid), {})[key] = to_json(val, where)
            else:
                raise CheckpointError(f"{where}: unsupported {type(val).__name__} value (tensors and numbers only)")
    groups = []
    for i, group in enumerate(sd["param_groups"]):
        g = {}
        for key, val in group.items():
            if torch.is_tensor(val):  # e.g. a Tensor learning rate
                tkey = f"{_GROUP_TENSOR_PREFIX}{i}.{key}"
                tensors[tkey] = cpu_tensor(val, seen)
                g[key] = {"__tensor__": tkey}
            else:
                g[key] = to_json(val, f"optimizer {name!r} param_groups[{i}][{key!r}]")
        groups.append(g)
    doc = {"type": f"{type(opt).__module__}.{type(opt).__qualname__}", "param_groups": groups, "scalars": scalars}
    return tensors, doc


def optimizer_state(name: str, label: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                     doc: dict, strict: bool) -> dict:
    """Rebuild an optimizer state dict from its stored parts, checking it fits ``opt``."""
    saved_type = doc.get("type")
    this_type = f"{type(opt).__module__}.{type(opt).__qualname__}"
    if saved_type != this_type:
        msg = f"optimizer {name!r}: checkpoint holds a {saved_type} state, the optimizer is a {this_type}"
        if strict:
            raise CheckpointError(msg)
        warnings.warn(msg + "; loading it anyway (strict=False)", stacklevel=3)
    groups = doc["param_groups"]
    saved_sizes = [len(g["params"]) for g in groups]
    this_sizes = [len(g["params"]) for g in opt.param_groups]
    if saved_sizes != this_sizes:
        raise CheckpointError(f"optimizer {name!r}: param group mismatch in {label}: the checkpoint has "
                              f"{len(saved_sizes)} group(s) with {saved_sizes} parameters, the optimizer has "
                              f"{len(this_sizes)} group(s) with {this_sizes}")
    params = [p for g in opt.param_groups for p in g["params"]]
    saved_ids = [pid for g in groups for pid in g["params"]]
    id_to_param = dict(zip(saved_ids, params))
    state: dict[int, dict[str, Any]] = {}
    for key, val in tensors.items():
        if key.startswith(_GROUP_TENSOR_PREFIX):
            continue
        pid_s, _, skey = key.partition(".")
        state.setdefault(int(pid_s), {})[skey] = val
    for pid_s, st in doc.get("scalars", {}).items():
        state.setdefault(int(pid_s), {}).update(st)
    for pid, st in state.items():
        if pid not in id_to_param:
            raise CheckpointError(f"optimizer {name!r}: state for parameter index {pid} in {label} matches no "
                                  f"parameter of the optimizer")
        shape = tuple(id_to_param[pid].shape)
        for skey, val in st.items():
            if skey in _PARAM_SHAPED and torch.is_tensor(val) and tuple(val.shape) != shape:
                raise CheckpointError(f"optimizer {name!r}: state {pid}.{skey} in {label} has shape "
                                      f"{tuple(val.shape)}, the parameter has shape {shape}")
    param_groups = []
    for g, live in zip(groups, opt.param_groups):
        g = dict(g)
        for key, val in list(g.items()):
            if isinstance(val, dict) and set(val) == {"__tensor__"}:
                if val["__tensor__"] not in tensors:
                    raise CheckpointError(f"optimizer {name!r}: tensor {val['__tensor__']!r} missing from {label}")
                g[key] = tensors[val["__tensor__"]]
            elif isinstance(live.get(key), tuple) and isinstance(val, list):
                g[key] = tuple(val)  # JSON has no tuples (e.g. Adam betas)
            else:
                g[key] = from_json(val)
        param_groups.append(g)
    return {"state": state, "param_groups": param_groups}


# ----------------------------------------------------------------------------------------------------------------
# RNG


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def _unb64(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)


def rng_state(rng: np.random.Generator | None) -> dict:
    state: dict[str, Any] = {"torch_cpu": _b64(torch.get_rng_state()), "torch_cuda": None, "numpy": None,
                             "python": None}
    if torch.cuda.is_available():
        state["torch_cuda"] = [_b64(s) for s in torch.cuda.get_rng_state_all()]
    if rng is not None:
        state["numpy"] = to_json(rng.bit_generator.state, "numpy rng state")
    py = random.getstate()
    if isinstance(py, tuple) and len(py) == 3 and isinstance(py[1], tuple):
        state["python"] = [py[0], list(py[1]), py[2]]
    return state


def restore_rng(state: dict, rng: np.random.Generator | None, restore_global_rng: bool) -> None:
    if rng is not None:
        saved = state.get("numpy")
        if saved is None:
            raise CheckpointError("an rng was passed to load_checkpoint but the checkpoint holds no numpy rng "
                                  "state (save_checkpoint was called without rng=)")
        saved = from_json(saved)
        have = rng.bit_generator.state.get("bit_generator")
        if saved.get("bit_generator") != have:
            raise CheckpointError(f"numpy rng: the checkpoint holds a {saved.get('bit_generator')} state, the "
                                  f"generator uses {have}")
        rng.bit_generator.state = saved
    if not restore_global_rng:
        return
    torch.set_rng_state(_unb64(state["torch_cpu"]))
    cuda = state.get("torch_cuda")
    if cuda and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([_unb64(s) for s in cuda])
        else:
            warnings.warn(f"checkpoint has CUDA RNG states for {len(cuda)} device(s), this machine has "
                          f"{torch.cuda.device_count()}; CUDA RNG not restored", stacklevel=3)
    py = state.get("python")
    if py is not None:
        random.setstate((py[0], tuple(py[1]), py[2]))


__all__ = ["CheckpointError", "to_json", "from_json", "write_json_file", "module_tensors", "write_safetensors", "parse_safetensors", "optimizer_parts", "optimizer_state", "rng_state", "restore_rng"]
