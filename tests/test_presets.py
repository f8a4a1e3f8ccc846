"""One preset mechanism (genrl.utils.presets) for every config: each preset resolves to exactly the values it had
before the mechanism (the tables below were computed from the old per-module tables), the CLI's --preset choices come
from the registry, a renamed preset still works with a warning, errors are one line, every field has its --help."""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict
from pathlib import Path

import pytest

import genrl.vlm.config

from genrl.app.cli import main
from genrl.app.demo import DemoConfig, DemoPreset, demo_preset
from genrl.app.experts_cmd import ExpertTrainConfig
from genrl.baselines.config import ALGOS, AgentConfig, BaselineConfig, make_config
from genrl.behavior.config import BehaveConfig, BehaviorConfig, behavior_preset
from genrl.mfwm.config import PretrainConfig
from genrl.utils.fields import field_docs, field_types
from genrl.utils.presets import PRESET_NAMES, PresetDeprecationWarning, make, names, register, registered
from genrl.vlm.config import MiniVLMConfig, MiniVLMTrainConfig, minivlm_preset
from genrl.worldmodel.config import WorldModelConfig, preset

EXPECTED = {
    'world-model config': {
        'paper': {'image_size': 64, 'cnn_depth': 48, 'deter': 1024, 'hidden': 1024, 'stoch': 32, 'discrete': 32,
                  'unimix': 0.01, 'kl_free': 1.0, 'kl_balance': 0.85, 'kl_scale': 0.6, 'reward_head': False,
                  'reward_layers': 4, 'reward_units': 1024, 'reward_bins': 255, 'lr': 0.0001, 'eps': 1e-08,
                  'grad_clip': 1000.0, 'weight_decay': 1e-06, 'batch_size': 48, 'batch_length': 48, 'precision':
                  'auto'},
        'small': {'image_size': 64, 'cnn_depth': 16, 'deter': 256, 'hidden': 256, 'stoch': 32, 'discrete': 32,
                  'unimix': 0.01, 'kl_free': 1.0, 'kl_balance': 0.85, 'kl_scale': 0.6, 'reward_head': False,
                  'reward_layers': 4, 'reward_units': 256, 'reward_bins': 255, 'lr': 0.0001, 'eps': 1e-08, 'grad_clip':
                  1000.0, 'weight_decay': 1e-06, 'batch_size': 16, 'batch_length': 32, 'precision': 'auto'},
        'tiny': {'image_size': 64, 'cnn_depth': 4, 'deter': 32, 'hidden': 32, 'stoch': 4, 'discrete': 4, 'unimix':
                 0.01, 'kl_free': 1.0, 'kl_balance': 0.85, 'kl_scale': 0.6, 'reward_head': False, 'reward_layers': 2,
                 'reward_units': 32, 'reward_bins': 255, 'lr': 0.0001, 'eps': 1e-08, 'grad_clip': 1000.0,
                 'weight_decay': 1e-06, 'batch_size': 4, 'batch_length': 16, 'precision': 'fp32'},
    },
    'behavior config': {
        'paper': {'actor_layers': 4, 'actor_units': 1024, 'critic_layers': 4, 'critic_units': 1024, 'batch_size': 32,
                  'batch_length': 32, 'horizon': 16, 'gamma': 0.99, 'lam': 0.95, 'actor_lr': 3e-05, 'critic_lr': 3e-05,
                  'adam_eps': 1e-05, 'grad_clip': 100.0, 'weight_decay': 1e-06, 'actor_min_std': 0.1, 'actor_max_std':
                  1.0, 'actor_entropy': 0.0, 'critic_bins': 255, 'critic_low': -20.0, 'critic_high': 20.0,
                  'slow_critic_every': 100, 'return_ema': 0.01, 'return_low': 0.05, 'return_high': 0.95,
                  'return_min_scale': 1.0, 'score': 'max_cosine', 'align_b': 8, 'skip_first_target': True,
                  'warmup_steps': 5, 'connector_fraction': 0.5, 'random_action_fraction': 0.5},
        'small': {'actor_layers': 2, 'actor_units': 256, 'critic_layers': 2, 'critic_units': 256, 'batch_size': 16,
                  'batch_length': 16, 'horizon': 16, 'gamma': 0.99, 'lam': 0.95, 'actor_lr': 0.001, 'critic_lr': 0.001,
                  'adam_eps': 1e-05, 'grad_clip': 100.0, 'weight_decay': 1e-06, 'actor_min_std': 0.3, 'actor_max_std':
                  1.0, 'actor_entropy': 0.0, 'critic_bins': 255, 'critic_low': -20.0, 'critic_high': 20.0,
                  'slow_critic_every': 100, 'return_ema': 0.01, 'return_low': 0.05, 'return_high': 0.95,
                  'return_min_scale': 1.0, 'score': 'max_cosine', 'align_b': 8, 'skip_first_target': True,
                  'warmup_steps': 5, 'connector_fraction': 0.5, 'random_action_fraction': 0.5},
        'tiny': {'actor_layers': 2, 'actor_units': 32, 'critic_layers': 2, 'critic_units': 32, 'batch_size': 4,
                 'batch_length': 8, 'horizon': 16, 'gamma': 0.99, 'lam': 0.95, 'actor_lr': 3e-05, 'critic_lr': 3e-05,
                 'adam_eps': 1e-05, 'grad_clip': 100.0, 'weight_decay': 1e-06, 'actor_min_std': 0.1, 'actor_max_std':
                 1.0, 'actor_entropy': 0.0, 'critic_bins': 255, 'critic_low': -20.0, 'critic_high': 20.0,
                 'slow_critic_every': 100, 'return_ema': 0.01, 'return_low': 0.05, 'return_high': 0.95,
                 'return_min_scale': 1.0, 'score': 'max_cosine', 'align_b': 8, 'skip_first_target': True,
                 'warmup_steps': 5, 'connector_fraction': 0.5, 'random_action_fraction': 0.5},
    },
    'agent config': {
        'paper': {'frame_stack': 3, 'encoder_channels': 32, 'encoder_strides': [2, 1, 1, 1], 'feature_dim': 50,
                  'hidden_dim': 1024, 'hidden_layers': 3, 'layernorm': True, 'lr': 0.0003, 'gamma': 0.99, 'tau': 0.005,
                  'expectile': 0.7, 'temperature': 3.0, 'max_weight': 100.0, 'policy_noise': 0.2, 'noise_clip': 0.5,
                  'policy_delay': 2, 'bc_alpha': 2.5},
        'cpu': {'frame_stack': 3, 'encoder_channels': 32, 'encoder_strides': [2, 2, 2, 1], 'feature_dim': 50,
                'hidden_dim': 256, 'hidden_layers': 2, 'layernorm': True, 'lr': 0.0003, 'gamma': 0.99, 'tau': 0.005,
                'expectile': 0.7, 'temperature': 3.0, 'max_weight': 100.0, 'policy_noise': 0.2, 'noise_clip': 0.5,
                'policy_delay': 2, 'bc_alpha': 2.5},
        'tiny': {'frame_stack': 3, 'encoder_channels': 8, 'encoder_strides': [2, 2, 2, 1], 'feature_dim': 16,
                 'hidden_dim': 32, 'hidden_layers': 1, 'layernorm': True, 'lr': 0.0003, 'gamma': 0.99, 'tau': 0.005,
                 'expectile': 0.7, 'temperature': 3.0, 'max_weight': 100.0, 'policy_noise': 0.2, 'noise_clip': 0.5,
                 'policy_delay': 2, 'bc_alpha': 2.5},
    },
}
# the MiniVLM architectures: the packaged model's defaults, and the tiny one the tests built by hand before
EXPECTED_MINIVLM = {
    'small': {'n_frames': 8, 'image_size': 64, 'dim': 256, 'channels': [16, 32, 64, 128], 'width': 128, 'layers': 2,
              'heads': 4, 'text_hidden': 512, 'init_temperature': 0.07},
    'tiny': {'n_frames': 4, 'image_size': 32, 'dim': 16, 'channels': [8, 16, 16], 'width': 32, 'layers': 1,
             'heads': 2, 'text_hidden': 32, 'init_temperature': 0.07},
}
# demo sizes per (preset, path) and behaviors per (domain, path), identical for both presets
EXPECTED_DEMO = {
    ('small', 'scratch'): {'frames': 50000, 'workers': 2, 'wm_preset': 'small', 'pretrain_steps': 1800,
                           'behave_preset': 'small', 'behave_steps': 500, 'data_free_steps': None, 'eval_episodes': 10,
                           'save_every': 250},
    ('small', 'shipped'): {'frames': 30000, 'workers': 2, 'wm_preset': 'small', 'pretrain_steps': 0, 'behave_preset':
                           'small', 'behave_steps': 500, 'data_free_steps': 1000, 'eval_episodes': 10,
                           'save_every': 250},
    ('tiny', 'scratch'): {'frames': 1503, 'workers': 1, 'wm_preset': 'tiny', 'pretrain_steps': 30, 'behave_preset':
                          'tiny', 'behave_steps': 20, 'data_free_steps': None, 'eval_episodes': 1, 'save_every': 10},
    ('tiny', 'shipped'): {'frames': 1503, 'workers': 1, 'wm_preset': 'tiny', 'pretrain_steps': 30, 'behave_preset':
                          'tiny', 'behave_steps': 20, 'data_free_steps': None, 'eval_episodes': 1, 'save_every': 10},
}
EXPECTED_DEMO_BEHAVIORS = {
    ('walker', 'scratch'): [('walker_stand', True), ('walker_lying_down', True), ('walker_stand', False)],
    ('walker', 'shipped'): [('walker_stand', False), ('walker_lying_down', False), ('walker_walk', False),
                            ('walker_stand', True)],
    ('cheetah', 'scratch'): [('cheetah_run', True), ('cheetah_run', False)],
    ('cheetah', 'shipped'): [('cheetah_run', True), ('cheetah_run', False)],
    ('quadruped', 'scratch'): [('quadruped_stand', True), ('quadruped_stand', False)],
    ('quadruped', 'shipped'): [('quadruped_stand', True), ('quadruped_stand', False)],
    ('stickman', 'scratch'): [('stickman_stand', True), ('stickman_stand', False)],
    ('stickman', 'shipped'): [('stickman_stand', True), ('stickman_stand', False)],
    ('kitchen', 'scratch'): [('kitchen_microwave', True), ('kitchen_microwave', False)],
    ('kitchen', 'shipped'): [('kitchen_microwave', True), ('kitchen_microwave', False)],
}


def _plain(cfg) -> dict:
    return json.loads(json.dumps(asdict(cfg)))


def test_every_preset_resolves_to_its_old_values():
    for what, build in (("world-model config", preset), ("behavior config", behavior_preset)):
        assert set(EXPECTED[what]) == set(names(what))
        for name, values in EXPECTED[what].items():
            assert _plain(build(name)) == values, (what, name)
            assert _plain(make(what, name)) == values, (what, name)
    assert names(AgentConfig) == ("paper", "small", "tiny")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PresetDeprecationWarning)
        for name, values in EXPECTED["agent config"].items():
            for algo in ALGOS:
                for got in (make_config(algo, name), make_config(algo, "small" if name == "cpu" else name)):
                    assert _plain(got) == {"algo": algo, **values}, (algo, name)
    assert names(MiniVLMConfig) == tuple(EXPECTED_MINIVLM)
    for name, values in EXPECTED_MINIVLM.items():
        assert _plain(minivlm_preset(name)) == values and isinstance(minivlm_preset(name).channels, tuple)
    packaged = Path(genrl.vlm.config.__file__).parent / "weights" / "minivlm" / "config.json"
    assert json.loads(packaged.read_text())["config"] == EXPECTED_MINIVLM["small"]
    for (name, path), sizes in EXPECTED_DEMO.items():
        for (domain, path_b), behaviors in EXPECTED_DEMO_BEHAVIORS.items():
            if path_b == path:
                got = demo_preset(name, domain, shipped=path == "shipped")
                assert got == DemoPreset(**sizes, behaviors=tuple(behaviors)), (name, domain, path)


def test_the_old_baseline_preset_name_still_works_with_a_warning(capsys):
    with pytest.warns(PresetDeprecationWarning, match="agent config preset 'cpu' is deprecated, use 'small'"):
        assert make_config("iql", "cpu") == make_config("iql", "small")
    args = ["baseline", "--algo", "td3", "--reward", "image", "--task", "walker_walk", "--dataset", "d", "--out",
            "o", "--preset", "cpu", "--print-config"]
    assert main(args) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["baseline"]["preset"] == "small" and doc["agent"]["hidden_dim"] == 256
    assert captured.err.strip() == ("warning: agent config preset 'cpu' is deprecated, use 'small' (the same "
                                    "values); 'cpu' will be removed")


def test_preset_errors_are_one_line_and_list_the_valid_names():
    with pytest.raises(ValueError, match=r"^unknown behavior config preset 'huge'; valid presets: paper, small, "
                       r"tiny$"):
        behavior_preset("huge")
    with pytest.raises(ValueError, match=r"unknown world-model config fields \['nope'\]; valid fields: \["):
        preset("tiny", nope=1)
    with pytest.raises(ValueError, match="world-model config field 'deter' expects int, got 'big'"):
        make(WorldModelConfig, "tiny", deter="big")
    with pytest.raises(ValueError, match="unknown demo preset 'paper'; valid presets: small, tiny"):
        demo_preset("paper", "walker")
    with pytest.raises(ValueError, match="no presets registered for 'nothing'"):
        make("nothing", "small")


def test_register_checks_the_table():
    with pytest.raises(ValueError, match="not in the shared vocabulary"):
        register(DemoConfig, {"cpu": {}}, what="test config")
    with pytest.raises(ValueError, match="test config preset 'tiny' field 'out' expects str"):
        register(DemoConfig, {"tiny": {"out": 3}}, what="test config")
    with pytest.raises(ValueError, match="alias 'old' names an unknown preset 'small'"):
        register(DemoConfig, {"tiny": {}}, what="test config", aliases={"old": "small"})


def test_cli_preset_choices_come_from_the_registry(capsys):
    for command, cls in ((["behave"], BehaviorConfig), (["pretrain"], WorldModelConfig), (["baseline"], AgentConfig),
                         (["demo"], DemoPreset), (["vlm", "train"], MiniVLMConfig)):
        with pytest.raises(SystemExit) as done:
            main([*command, "--help"])
        assert done.value.code == 0
        assert "--preset {" + ",".join(names(cls)) + "}" in capsys.readouterr().out, command
    assert set(registered()) >= {"world-model config", "behavior config", "agent config", "demo", "MiniVLM config"}
    assert all(set(t.names()) <= set(PRESET_NAMES) for t in registered().values())


@pytest.mark.parametrize("cls", [WorldModelConfig, BehaviorConfig, AgentConfig, DemoPreset, MiniVLMConfig, BehaveConfig,
                                 BaselineConfig, PretrainConfig, MiniVLMTrainConfig, DemoConfig, ExpertTrainConfig])
def test_every_config_field_is_documented(cls):
    docs = field_docs(cls)
    assert [name for name in field_types(cls) if not docs.get(name)] == []
