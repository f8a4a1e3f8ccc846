"""Shared pytest setup: headless rendering and the optional ``../shared`` folder."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    """``../shared`` beside the checkout (reference material and real data); skips the test if absent."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not found (tests that read real shared data need the ../shared folder)")
    return SHARED
