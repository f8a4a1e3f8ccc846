"""Bad input at the edges: ``--set`` values checked against the config field types, and a light ``genrl`` CLI
import (no torch just to print ``--help``)."""

import subprocess
import sys
from dataclasses import dataclass

import pytest

from genrl.app.cli import main
from genrl.app.overrides import parse_overrides
from genrl.utils.fields import coerce_overrides


@dataclass
class _Cfg:
    flag: bool = False
    steps: int = 1
    lr: float = 0.1
    name: str = "x"
    strides: tuple[int, ...] = (2, 2)
    maybe: int | None = None


def test_coerce_overrides_types():
    got = coerce_overrides(_Cfg, {"flag": "true", "steps": 16.0, "lr": 1, "name": "fp32", "strides": [2, 1.0],
                                  "maybe": None})
    assert got == {"flag": True, "steps": 16, "lr": 1.0, "name": "fp32", "strides": (2, 1), "maybe": None}
    assert type(got["lr"]) is float and type(got["steps"]) is int
    assert coerce_overrides(_Cfg, {"flag": 0, "steps": "8", "lr": "1e-4", "maybe": 3}) == \
        {"flag": False, "steps": 8, "lr": 1e-4, "maybe": 3}
    for name, value, expected in (("steps", 16.5, "int"), ("steps", True, "int"), ("lr", "abc", "float"),
                                  ("flag", "maybe", "bool"), ("flag", 2, "bool"), ("name", 3, "str"),
                                  ("strides", "22", "tuple"), ("strides", [2, 1.5], "tuple")):
        with pytest.raises(ValueError, match=f"field '{name}' expects {expected}") as err:
            coerce_overrides(_Cfg, {name: value}, "test config")
        assert repr(value) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"unknown test config fields \['nope'\]"):
        coerce_overrides(_Cfg, {"nope": 1}, "test config")


def test_parse_overrides_with_a_schema():
    assert parse_overrides(["steps=4", "name=123", "lr=1"], _Cfg) == {"steps": 4, "name": "123", "lr": 1.0}
    assert parse_overrides(["name=123", "x=abc"]) == {"name": 123, "x": "abc"}  # no schema: as before
    with pytest.raises(ValueError, match="expects int, got 16.5"):
        parse_overrides(["steps=16.5"], _Cfg)


def test_config_builders_check_types():
    from genrl.baselines.algos import make_config
    from genrl.worldmodel.config import preset

    assert preset("tiny", batch_size="8").batch_size == 8
    with pytest.raises(ValueError, match="world-model config field 'batch_size' expects int"):
        preset("tiny", batch_size=8.5)
    assert make_config("iql", "tiny", gamma=1).gamma == 1.0
    with pytest.raises(ValueError, match="agent config field 'layernorm' expects bool"):
        make_config("iql", "tiny", layernorm="sometimes")


@pytest.mark.parametrize("item, message", [
    ("gamma=abc", "error: behavior config field 'gamma' expects float, got 'abc'"),
    ("horizon=16.5", "error: behavior config field 'horizon' expects int, got 16.5"),
])
def test_behave_set_wrong_type_is_one_line(tmp_path, capsys, item, message):
    out = tmp_path / "run"
    assert main(["behave", "walker", "--task", "walker_walk", "--out", str(out), "--set", item]) == 2
    err = capsys.readouterr().err
    assert err.strip() == message
    assert not out.exists()


def test_baseline_and_pretrain_set_wrong_type(tmp_path, capsys):
    assert main(["baseline", "--algo", "iql", "--reward", "video", "--task", "walker_walk", "--dataset",
                 str(tmp_path / "data"), "--out", str(tmp_path / "bl"), "--set", "hidden_dim=1.5"]) == 2
    assert "agent config field 'hidden_dim' expects int, got 1.5" in capsys.readouterr().err
    assert main(["pretrain", str(tmp_path / "data"), "--out", str(tmp_path / "wm"), "--set", "precision=16",
                 "deter=big"]) == 2
    assert "world-model config field 'deter' expects int, got 'big'" in capsys.readouterr().err


def test_cli_import_and_parser_do_not_import_torch():
    code = ("import sys; import genrl.app.cli as c; c.build_parser(); "
            "heavy = sorted(m for m in ('torch', 'transformers', 'dm_control', 'mujoco') if m in sys.modules); "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_vlm_package_names_load_lazily():
    import genrl.vlm as vlm

    assert "default" in vlm.NAMES and callable(vlm.make_embedder)
    assert issubclass(vlm.PromptError, ValueError)
    with pytest.raises(AttributeError):
        vlm.nope  # noqa: B018


def test_vlm_text_bad_prompts_are_one_line(capsys):
    bad = b"walk \xff fast".decode("utf-8", "surrogateescape")  # what Python makes of invalid UTF-8 argv bytes
    assert main(["vlm", "text", bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: text prompt 0 is not valid UTF-8") and err.count("\n") == 1
    assert main(["vlm", "text", "walk " * 20_000]) == 2
    assert "characters, over the limit of 2000" in capsys.readouterr().err
