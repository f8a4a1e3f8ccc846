"""Atomic writes and video output."""

import os
import stat

import imageio.v2 as imageio
import numpy as np
import pytest

from genrl.utils.io import atomic_path, write_json, write_video


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "a.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("crash")
    assert target.read_text().strip().startswith("{") and '"v": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary left behind
    mode = stat.S_IMODE(os.stat(target).st_mode)
    assert mode & 0o044, "written files must be readable by others (not mkstemp's 0600)"


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_write_video_round_trip(tmp_path, suffix):
    frames = np.zeros((6, 64, 64, 3), np.uint8)
    for t in range(6):
        frames[t, :, t * 10:(t + 1) * 10] = 255
    path = write_video(tmp_path / f"v{suffix}", frames, fps=10, scale=2)
    back = np.asarray(imageio.mimread(path))
    assert back.shape[0] == 6 and back.shape[1:3] == (128, 128)
    assert back[3, :, 60:80, :3].mean() > 200 and back[3, :, :40, :3].mean() < 30


def test_write_video_errors(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "v.mp4", np.zeros((3, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="extension"):
        write_video(tmp_path / "v.avi", np.zeros((3, 8, 8, 3), np.uint8))
    assert not list(tmp_path.iterdir())
