"""The ``genrl`` command line: envs list/video, its error handling, options generated from the config dataclasses
and ``--print-config``."""

import json
import subprocess
import sys
from dataclasses import asdict, dataclass

import imageio.v2 as imageio
import pytest

from genrl.app.cli import Parser, main
from genrl.app.config_args import add_config_args, config_from_args
from genrl.baselines.config import make_config
from genrl.behavior.config import behavior_preset
from genrl.vlm.config import minivlm_preset
from genrl.worldmodel.config import preset


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


# ------------------------------------------------------------------ options generated from the config dataclasses
def _help(capsys, *command) -> str:
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


def test_every_help_works_without_torch_in_under_a_second():
    """``genrl [CMD [SUB]] --help`` of every (nested) subcommand exits 0 and none of them imports torch (what made
    --help slow: ~0.25 s each now, measured by hand); one process walks the whole parser tree, so the time bound
    (import included) is a loose one on a busy machine."""
    code = """if True:
        import time
        begin = time.perf_counter()
        import argparse, contextlib, io, json, sys
        from genrl.app.cli import build_parser

        def walk(parser, path):
            yield path
            for action in parser._actions:
                if isinstance(action, argparse._SubParsersAction):
                    for name, sub in action.choices.items():
                        yield from walk(sub, path + [name])

        commands, codes = list(walk(build_parser(), [])), {}
        for command in commands:
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    build_parser().parse_args(command + ["--help"])
            except SystemExit as done:
                codes[" ".join(command)] = done.code
        heavy = sorted(m for m in ("torch", "transformers", "dm_control", "mujoco") if m in sys.modules)
        print(json.dumps({"codes": codes, "heavy": heavy, "seconds": time.perf_counter() - begin}))
    """
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    doc = json.loads(result.stdout)
    assert len(doc["codes"]) >= 25 and {"pretrain", "vlm train", "experts train", "envs video"} <= set(doc["codes"])
    assert set(doc["codes"].values()) == {0} and doc["heavy"] == []
    assert doc["seconds"] / len(doc["codes"]) < 1.0


def test_help_text_is_the_field_docstring_with_its_default(capsys):
    text = _help(capsys, "behave")
    assert "--steps STEPS total actor-critic updates. (default: 10000)" in text
    assert "--eval-workers N|auto processes that step and render the evaluation episodes" in text
    assert "--reward {genrl,oracle} genrl: the prompt's latent target" in text
    text = _help(capsys, "pretrain")
    assert "--holdout HOLDOUT fraction of episodes never trained on" in text and "(default: 0.05)" in text
    text = _help(capsys, "baseline")
    assert "--embeddings EMBEDDING_ID read these stored dataset embeddings" in text
    assert "--batch-size BATCH_SIZE transitions per gradient step. (default: 256)" in text
    assert "--out OUT output folder (every stage's outputs" in _help(capsys, "demo")
    assert "--warmup WARMUP steps of linear learning-rate warm-up. (default: 100)" in _help(capsys, "vlm", "train")


@dataclass
class _Toy:
    """A toy config.

    Attributes:
        name: its name.
        flag: on unless --no-flag.
        sizes: some sizes.
    """

    name: str
    flag: bool = True
    sizes: tuple[int, ...] = (1, 2)


@dataclass
class _Undocumented:
    """Attributes:
    documented: has its text.
    """

    documented: int = 0
    forgotten: int = 1


def test_options_follow_the_annotations_and_every_field_needs_its_docstring_text():
    parser = Parser(prog="toy")
    add_config_args(parser, _Toy, positional=("name",))
    assert config_from_args(_Toy, parser.parse_args(["x"])) == _Toy("x")
    assert config_from_args(_Toy, parser.parse_args(["x", "--no-flag", "--sizes", "3"])) == _Toy("x", False, (3,))
    text = " ".join(parser.format_help().split())
    assert "--flag, --no-flag on unless --no-flag. (default: True) --sizes" in text  # the default said once
    with pytest.raises(ValueError, match=r"^_Undocumented.forgotten has no text in the class docstring's "
                       "Attributes section$"):
        add_config_args(Parser(prog="bad"), _Undocumented)


@pytest.mark.parametrize("argv, message", [
    (["behave", "walker", "--task", "walker_stand", "--out", "o", "--steps", "abc"],
     "error: genrl behave: argument --steps: expects int, got 'abc'"),
    (["behave", "walker", "--task", "walker_stand", "--out", "o", "--eval-workers", "0"],
     "error: genrl behave: argument --eval-workers: expects an int >= 1 or 'auto', got '0'"),
    (["pretrain", "data", "--out", "o", "--holdout", "most"],
     "error: genrl pretrain: argument --holdout: expects float, got 'most'"),
    (["baseline", "--algo", "iql", "--reward", "video", "--task", "t", "--dataset", "d", "--out", "o",
      "--preset", "huge"], "error: genrl baseline: argument --preset: unknown agent config preset 'huge'; valid "
     "presets: paper, small, tiny"),
    (["demo", "--preset", "paper"], "error: genrl demo: argument --preset: unknown demo preset 'paper'"),
    (["vlm", "train", "--datasets", "d", "--out", "o", "--snapshot"], "error: genrl: unrecognized arguments: "
     "--snapshot"),
    (["vlm", "train", "--datasets", "d", "--out", "o", "--preset", "paper"], "error: genrl vlm train: argument "
     "--preset: unknown MiniVLM config preset 'paper'; valid presets: small, tiny"),
    (["experts", "train", "walker_walk", "--out", "o", "--fractions", "half"], "error: genrl experts train: argument "
     "--fractions: expects float, got 'half'"),
])
def test_a_bad_option_is_a_one_line_error_with_exit_code_2(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["behave", "RUN", "--task", "walker_stand", "--out", "o", "--set", "gamma=abc"],
     "error: behavior config field 'gamma' expects float, got 'abc'"),
    (["behave", "RUN", "--task", "walker_stand", "--out", "o", "--set", "horizon=16.5"],
     "error: behavior config field 'horizon' expects int, got 16.5"),
    (["vlm", "train", "--datasets", "d", "--out", "o", "--set", "dim=big"],
     "error: MiniVLM config field 'dim' expects int, got 'big'"),
])
def test_a_bad_set_value_is_a_one_line_error_with_exit_code_2(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr().err == message + "\n"
    assert list(tmp_path.iterdir()) == []


def test_a_bad_option_from_the_console_script_has_no_traceback():
    result = subprocess.run([sys.executable, "-m", "genrl.app.cli", "behave", "walker", "--task", "walker_stand",
                             "--out", "o", "--align-b", "1.5"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == ("error: genrl behave: argument --align-b: expects int, got '1.5' (`genrl behave --help` "
                             "lists the options)\n")


def _json(cfg) -> dict:
    return json.loads(json.dumps(asdict(cfg)))


def _printed(capsys, argv) -> dict:
    assert main([*argv, "--print-config"]) == 0
    return json.loads(capsys.readouterr().out)


def test_print_config_prints_the_resolved_config_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = str(tmp_path / "run")
    doc = _printed(capsys, ["behave", "walker", "--task", "walker_stand", "--out", out, "--preset", "tiny",
                            "--set", "horizon=8", "actor_lr=1e-3", "--score", "cosine", "--steps", "7",
                            "--eval-workers", "auto"])
    assert doc["behave"]["steps"] == 7 and doc["behave"]["eval_workers"] == "auto"
    assert doc["behave"]["overrides"] == {"horizon": 8, "actor_lr": 1e-3}
    assert doc["behavior"] == {**asdict(behavior_preset("tiny")), "horizon": 8, "actor_lr": 1e-3, "score": "cosine"}
    doc = _printed(capsys, ["pretrain", str(tmp_path / "no_data"), "--out", out, "--preset", "tiny", "--set",
                            "deter=16", "--snapshot-at", "5", "10"])
    assert doc["pretrain"]["snapshot_at"] == [5, 10] and doc["pretrain"]["embedder_id"].startswith("genrl-minivlm")
    assert doc["world_model"] == {**asdict(preset("tiny")), "deter": 16}
    doc = _printed(capsys, ["baseline", "--algo", "td3bc", "--reward", "image", "--task", "walker_walk",
                            "--dataset", str(tmp_path / "d"), "--out", out, "--set", "hidden_dim=64",
                            "--embeddings", "siglip-b16-224"])
    assert doc["baseline"]["preset"] == "small" and doc["baseline"]["embedding_id"] == "siglip-b16-224"
    assert doc["agent"] == {**asdict(make_config("td3bc", "small")), "hidden_dim": 64, "encoder_strides": [2, 2, 2, 1]}
    doc = _printed(capsys, ["demo", "--preset", "tiny", "--out", out, "--from-scratch"])
    assert doc["settings"]["path"] == "from scratch" and doc["settings"]["pretrain_steps"] == 30
    assert doc["settings"]["behaviors"][0] == ["walker_stand", True]
    doc = _printed(capsys, ["vlm", "train", "--datasets", "a", "b", "--out", out, "--steps", "3"])
    assert doc["vlm_train"]["datasets"] == ["a", "b"] and doc["vlm_train"]["model"] == _json(minivlm_preset("small"))
    doc = _printed(capsys, ["vlm", "train", "--datasets", "a", "--out", out, "--preset", "tiny", "--set", "dim=32",
                            "channels=[4, 8]"])
    assert doc["vlm_train"]["model"] == {**_json(minivlm_preset("tiny")), "dim": 32, "channels": [4, 8]}
    doc = _printed(capsys, ["experts", "train", "walker_walk", "--out", out, "--steps", "100"])
    assert doc["experts_train"]["steps"] == 100 and doc["experts_train"]["fractions"] == [0.25, 0.5, 1.0]
    doc = _printed(capsys, ["experts", "train", "walker_walk", "--out", out, "--fractions", "0.5", "1"])
    assert doc["experts_train"]["fractions"] == [0.5, 1.0] and doc["experts_train"]["threads"] == 1
    assert list(tmp_path.iterdir()) == []


def test_several_tasks_make_a_group_of_behaviors_one_folder_each(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = str(tmp_path / "group")
    doc = _printed(capsys, ["behave", "walker", "--task", "walker_stand", "--task", "walker_walk", "--out", out,
                            "--preset", "tiny", "--steps", "7", "--seed", "3"])
    members = [m["behave"] for m in doc["members"]]
    assert [m["task"] for m in members] == ["walker_stand", "walker_walk"]
    assert [m["out"] for m in members] == [f"{out}/walker_stand", f"{out}/walker_walk"]
    assert all(m["steps"] == 7 and m["seed"] == 3 and m["prompt"] is None for m in members)
    doc = _printed(capsys, ["behave", "walker", "--task", "walker_walk", "--prompt", "walk fast", "--prompt",
                            "walk slowly", "--out", out])
    assert [m["behave"]["prompt"] for m in doc["members"]] == ["walk fast", "walk slowly"]
    assert doc["members"][0]["behave"]["out"] != doc["members"][1]["behave"]["out"]
    with pytest.raises(SystemExit, match="got 2 prompts for 3 behaviors"):
        main(["behave", "walker", "--task", "walker_stand", "--task", "walker_walk", "--task", "walker_run",
              "--prompt", "a", "--prompt", "b", "--out", out, "--print-config"])
    assert list(tmp_path.iterdir()) == []
