"""The ``genrl`` command line: envs list/video and its error handling."""

import imageio.v2 as imageio

from genrl.app.cli import main


def test_envs_list(capsys):
    assert main(["envs", "list", "--domain", "stickman"]) == 0
    out = capsys.readouterr().out
    assert "stickman_hands_up" in out and "standing with the hands up" in out and "walker_walk" not in out


def test_envs_video_writes_a_readable_file(tmp_path, capsys):
    path = tmp_path / "clip.mp4"
    assert main(["envs", "video", "cheetah_run", "--out", str(path), "--steps", "6", "--scale", "1"]) == 0
    frames = imageio.mimread(path)
    assert len(frames) == 7 and frames[0].shape == (64, 64, 3)
    assert "normalized score" in capsys.readouterr().out


def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys):
    assert main(["envs", "video", "walker_nope", "--out", str(tmp_path / "x.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown task 'walker_nope'") and "walker_walk" in err
    assert not (tmp_path / "x.mp4").exists()
    assert main(["envs", "list", "--domain", "dragon"]) == 2
    assert "valid domains" in capsys.readouterr().err
