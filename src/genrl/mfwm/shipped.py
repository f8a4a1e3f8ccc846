"""Trained MFWMs shipped inside the package, used by name wherever a pre-training run folder is taken.

A shipped model is a pre-training run folder stored under ``src/genrl/mfwm/weights/<name>/``::

    config.json            the run's config (as ``genrl pretrain`` writes it)
    checkpoint/            weights only: ``mfwm.safetensors`` in float16, ``state.json`` (step, sha256), config
    card.json              the model card: data, command, updates, wall-clock, held-out metrics, scores
    README.md              the same card for people

Float16 halves the files (the small walker MFWM: ~6 MB); the weights are cast back to float32 when loaded (the
modules are built in float32 and ``load_state_dict`` copies across dtypes), so training and inference run exactly
as with a run folder. Every command that takes a pre-training run (``behave``, ``decode``, ``pretrain-eval``,
``reward-check``, ``pretrain --init``) also takes a shipped name through :func:`resolve_run`.

Usage::

    genrl models                                           # list the shipped models and their cards
    genrl behave walker --task walker_stand --out runs/stand --dataset runs/data/walker
    genrl models export runs/walker_mfwm --name walker      # pack a run (fp16) into the package
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

from genrl.utils.io import write_json, write_text

WEIGHTS_DIR = Path(__file__).parent / "weights"
# extra folders searched for shipped models (os.pathsep-separated), e.g. a shared models folder
PATH_ENV = "GENRL_MODELS_PATH"
CARD = "card.json"


def search_dirs() -> list[Path]:
    """Folders holding shipped models: ``$GENRL_MODELS_PATH`` entries first, then the package's own."""
    extra = [Path(p) for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p]
    return [*extra, WEIGHTS_DIR]


def shipped_models() -> dict[str, Path]:
    """``name -> folder`` of every shipped model (a folder with ``card.json`` and ``config.json``)."""
    found: dict[str, Path] = {}
    for root in search_dirs():
        if root.is_dir():
            for folder in sorted(root.iterdir()):
                if (folder / CARD).is_file() and (folder / "config.json").is_file():
                    found.setdefault(folder.name, folder)
    return found


def is_shipped_name(run: str | os.PathLike) -> bool:
    """True if ``run`` is the name of a shipped model and not an existing folder (a folder always wins)."""
    return not Path(run).is_dir() and str(run) in shipped_models()


def resolve_run(run: str | os.PathLike) -> Path:
    """A pre-training run folder from a path or a shipped model's name.

    Raises:
        FileNotFoundError: ``run`` is neither an existing folder nor a shipped name; the message lists the
            shipped models.
    """
    path = Path(run)
    if path.is_dir():
        return path
    models = shipped_models()
    if str(run) in models:
        return models[str(run)]
    names = ", ".join(sorted(models)) or "none"
    raise FileNotFoundError(f"{run}: not a pre-training run folder nor a shipped model (shipped: {names}; "
                            "`genrl models` lists them)")


def read_card(name: str) -> dict:
    """The model card (``card.json``) of a shipped model. Raises FileNotFoundError for an unknown name."""
    return json.loads((resolve_run(name) / CARD).read_text())


def export_model(run: str | os.PathLike, name: str, card: dict, out_root: str | os.PathLike | None = None,
                 readme: str | None = None) -> Path:
    """Pack the latest weights of a pre-training run as shipped model ``name`` (float16, weights only).

    Args:
        run: pre-training run folder (or snapshot folder). name: the model's name (letters, digits, ``_``, ``-``).
        card: model-card fields (data, command, wall-clock, metrics, scores...); ``name``, ``step``, ``dtype``
            and ``source_run`` are added. ``card["data"]["command"]`` (how to make the training dataset) is also
            stored in the model's ``config.json`` as ``dataset_command``, for the error of a missing dataset.
        out_root: folder receiving ``<name>/`` (default: the package's ``mfwm/weights``).
        readme: Markdown of the model card for ``README.md`` (default: the card as a JSON block).

    Returns:
        The shipped model's folder. An existing model of that name is replaced (the new one is written beside it
        and swapped in).

    Raises:
        ValueError: bad name. FileNotFoundError / CheckpointError: no or damaged checkpoint in ``run``.
    """
    import re

    from genrl.mfwm.pretrain import CKPT, load_pretrained
    from genrl.utils.checkpoint import save_checkpoint

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_\-]*", name):
        raise ValueError(f"model name {name!r}: use letters, digits, '_' and '-' only")
    model, cfg = load_pretrained(run)
    step = cfg.pop("step")
    data = card.get("data")
    command = data.get("command") if isinstance(data, dict) else None
    if command:  # behave's hint when the default dataset (cfg["pretrain"]["dataset"]) is missing
        cfg["dataset_command"] = command
    root = Path(out_root) if out_root is not None else WEIGHTS_DIR
    final, tmp = root / name, root / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    half = copy.deepcopy(model).half()
    save_checkpoint(tmp / CKPT, {"mfwm": half}, {}, step, cfg)
    write_json(tmp / "config.json", cfg)
    full = {"name": name, "step": step, "dtype": "float16", "source_run": str(run), **card}
    write_json(tmp / CARD, full)
    write_text(tmp / "README.md", readme if readme is not None else
               f"# Shipped MFWM `{name}`\n\n```json\n{json.dumps(full, indent=1)}\n```\n")
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    return final


__all__ = ["WEIGHTS_DIR", "PATH_ENV", "search_dirs", "shipped_models", "is_shipped_name", "resolve_run",
           "read_card", "export_model"]
