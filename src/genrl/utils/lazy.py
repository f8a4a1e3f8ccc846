"""Names of a package that load on first use (PEP 562), so that importing the package (the CLI reads light modules
under it) does not import torch.

Usage (in a package's ``__init__.py``)::

    from genrl.utils.lazy import lazy_names
    _LAZY = {"WorldModel": "genrl.worldmodel.model", "preset": "genrl.worldmodel.config"}
    __all__ = list(_LAZY)
    __getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_names(package: str, names: Mapping[str, str], exported: Iterable[str]) -> tuple[Callable, Callable]:
    """The module ``__getattr__`` and ``__dir__`` of ``package``: attribute ``name`` is imported from the module
    ``names[name]`` on first access and then kept in the package (later accesses are plain lookups).

    Args:
        package: the package's ``__name__``. names: attribute -> module defining it. exported: its ``__all__``.
    """
    exported = list(exported)

    def __getattr__(name: str) -> Any:
        if name in names:
            value = getattr(importlib.import_module(names[name]), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exported))

    return __getattr__, __dir__


__all__ = ["lazy_names"]
