"""The captioner (``genrl.vlm.captions``): facts from posed / simulated physics, paraphrases, held-out split."""

import re

import numpy as np
import pytest
from dm_control.suite import quadruped as dmc_quadruped

from genrl.envs import make
from genrl.envs.registry import PROMPTS
from genrl.vlm import captions as cap
from genrl.vlm.caption_facts import DOMAINS, MOTIONS, POSTURES

PLANAR_PARTS = ("torso", "left_foot", "right_foot", "left_leg", "right_leg", "left_thigh", "right_thigh")


@pytest.fixture(scope="module")
def envs():
    built = {d: make(f"{d}_{t}", seed=0, render=None)
             for d, t in (("walker", "stand"), ("stickman", "stand"), ("cheetah", "run"), ("quadruped", "walk"))}
    yield built
    for e in built.values():
        e.close()


def _pose(env, qpos=None, qvel=None, k=8):
    """Set named joints (others 0), put the lowest body part at 5 cm, and return a static k-frame clip."""
    p = env.physics
    with p.reset_context():
        p.data.qpos[:] = 0.0
        for name, value in (qpos or {}).items():
            p.data.ptr.joint(name).qpos[:] = value
    parts = {"walker": PLANAR_PARTS, "stickman": PLANAR_PARTS + ("head",),
             "cheetah": ("torso", "bfoot", "ffoot", "bthigh", "fthigh")}[env.domain.name]
    p.data.ptr.joint("rootz").qpos[0] += 0.05 - min(p.data.ptr.body(b).xpos[2] for b in parts)
    for name, value in (qvel or {}).items():
        p.data.ptr.joint(name).qvel[:] = value
    p.forward()
    return {n: np.full(k, v) for n, v in env.domain.descriptors(p).items()}


def _simulate(env, qpos=None, qvel=None, k=8):
    """Start from a set state (others 0) and record ``info["physics"]`` over k zero-action steps."""
    env.reset(seed=0)
    p = env.physics
    with p.reset_context():
        p.data.qpos[:] = 0.0
        for name, value in (qpos or {}).items():
            p.data.ptr.joint(name).qpos[:] = value
    for name, value in (qvel or {}).items():
        p.data.ptr.joint(name).qvel[:] = value
    p.forward()
    rows = [env.step(np.zeros(env.action_space.shape))[4]["physics"] for _ in range(k)]
    return {n: np.array([r[n] for r in rows]) for n in rows[0]}


def _words(domain):
    extra = [p for (d, _), e in cap.DOMAIN_PHRASES.items() if d == domain for p in e]
    text = " ".join([p for _, train, _ in cap.PHRASES.values() for p in train] + extra + list(cap.SUBJECTS[domain]))
    return set(re.findall(r"[a-z]+", text))


# -- API and errors -------------------------------------------------------------------------------------------
def test_unknown_domain_names_valid_ones():
    for fn in (lambda: cap.describe("hopper", {"x": np.zeros(8)}),
               lambda: cap.caption("hopper", {"x": np.zeros(8)}, np.random.default_rng(0)),
               lambda: cap.captions("hopper", {"x": np.zeros(8)}, 2, np.random.default_rng(0))):
        with pytest.raises(ValueError, match="hopper") as err:
            fn()
        assert all(d in str(err.value) for d in DOMAINS)


def test_missing_descriptor_and_bad_arguments(envs):
    phys = _pose(envs["walker"])
    del phys["angmom_y"]
    with pytest.raises(ValueError, match="angmom_y"):
        cap.describe("walker", phys)
    good = _pose(envs["walker"])
    with pytest.raises(ValueError, match="split"):
        cap.caption("walker", good, np.random.default_rng(0), split="test")
    with pytest.raises(ValueError, match="n must be"):
        cap.captions("walker", good, 0, np.random.default_rng(0))


def test_clip_physics_slices_and_pads():
    arr = np.arange(30, dtype=np.float32).reshape(10, 3)
    clip = cap.clip_physics(arr, ["a", "b", "c"], end=5, k=4)
    np.testing.assert_array_equal(clip["a"], [6, 9, 12, 15])
    early = cap.clip_physics(arr, np.array(["a", "b", "c"]), end=1, k=4)
    np.testing.assert_array_equal(early["b"], [1, 1, 1, 4])          # edge-padded with step 0
    assert set(early) == {"a", "b", "c"} and early["c"].dtype == np.float32
    for kwargs in ({"end": 10, "k": 4}, {"end": 3, "k": 0}):
        with pytest.raises(ValueError):
            cap.clip_physics(arr, ["a", "b", "c"], **kwargs)
    with pytest.raises(ValueError, match="names"):
        cap.clip_physics(arr, ["a", "b"], end=3, k=2)


# -- planar bodies ----------------------------------------------------------------------------------------------
def test_walker_standing_still(envs):
    facts = cap.describe("walker", _pose(envs["walker"]))
    assert "standing upright" in facts and "holding still" in facts
    assert not any("lying" in f for f in facts)


def test_walker_lying_on_back_and_front(envs):
    back = cap.describe("walker", _pose(envs["walker"], {"rooty": -np.pi / 2}))
    front = cap.describe("walker", _pose(envs["walker"], {"rooty": np.pi / 2}))
    assert "lying down" in back and "on its back" in back and "standing upright" not in back
    assert "lying down" in front and "on its front" in front
    legs_up = cap.describe("walker", _pose(envs["walker"], {"rooty": -np.pi / 2, "left_hip": 1.2, "right_hip": 1.2}))
    assert "lying down with feet up" in legs_up


@pytest.mark.parametrize("vx, expected, absent", [
    (6.0, "running fast", "walking"), (3.0, "running", "walking"), (1.5, "walking fast", "running"),
    (0.5, "walking slowly", "running"), (-1.5, "walking backwards", "running"), (0.0, "holding still", "walking")])
def test_walker_speed_bands(envs, vx, expected, absent):
    phys = _pose(envs["walker"])
    phys["com_vx"] = np.full(8, vx)
    facts = cap.describe("walker", phys)
    assert expected in facts and not any(f.startswith(absent) for f in facts)


def test_walker_one_foot_kick_kneel(envs):
    w = envs["walker"]
    assert "standing on one foot" in cap.describe("walker", _pose(w, {"right_hip": np.pi / 2}))
    assert "kicking one leg high" in cap.describe("walker", _pose(w, {"right_hip": 2.3}))
    assert "kicking one leg high" not in cap.describe("walker", _pose(w))
    kneel = cap.describe("walker", _pose(w, {"right_knee": -np.pi / 2, "left_knee": -np.pi / 2}))
    assert "kneeling" in kneel and "standing upright" not in kneel
    lunge = cap.describe("walker", _pose(w, {"right_hip": np.pi / 2, "right_knee": -np.pi / 2,
                                             "left_knee": -np.pi / 2}))
    assert "in a lunge pose" in lunge


@pytest.mark.parametrize("spin, expected", [(15.0, "flipping forward"), (-15.0, "flipping backward")])
def test_walker_flips_with_direction(envs, spin, expected):
    phys = _simulate(envs["walker"], {"rootz": 1.5}, {"rooty": spin})
    facts = cap.describe("walker", phys)
    assert expected in facts
    assert not any(f.startswith("flipping") and f != expected for f in facts)


def test_stickman_headstand_hands_up_punch(envs):
    s = envs["stickman"]
    head = cap.describe("stickman", _pose(s, {"rooty": np.pi}))
    assert "doing a headstand" in head and "upside down" in head
    hands = cap.describe("stickman", _pose(s, {"left_shoulder": np.radians(100), "right_shoulder": np.radians(100),
                                               "left_elbow": 1.2, "right_elbow": 1.2}))
    assert "raising its hands up" in hands and "punching" not in hands
    punch = cap.describe("stickman", _pose(s, qvel={"right_shoulder": 15.0}))
    assert "punching" in punch
    assert "punching" not in cap.describe("stickman", _pose(s))


# -- cheetah and quadruped -------------------------------------------------------------------------------------
@pytest.mark.parametrize("spin, expected", [(12.0, "flipping forward"), (-12.0, "flipping backward")])
def test_cheetah_flipping_direction(envs, spin, expected):
    phys = _simulate(envs["cheetah"], {"rootz": 1.0}, {"rooty": spin})
    assert phys["angmom_y"].mean() * spin > 0
    facts = cap.describe("cheetah", phys)
    assert expected in facts and sum(f.startswith("flipping") for f in facts) == 1


def test_cheetah_postures(envs):
    c = envs["cheetah"]
    assert "standing on its hind legs" in cap.describe("cheetah", _pose(c, {"rooty": -np.pi / 2}))
    back = cap.describe("cheetah", _pose(c, {"rooty": np.pi}))
    assert "upside down" in back and "lying down" in back
    fast = _pose(c)
    fast["com_vx"] = np.full(8, 8.0)
    assert "running fast" in cap.describe("cheetah", fast)


def test_quadruped_upright_and_upside_down(envs):
    q = envs["quadruped"]
    q.reset(seed=0)
    for orientation, expected, absent in (([1.0, 0, 0, 0], "standing upright", "upside down"),
                                          ([0, 1.0, 0, 0], "upside down", "standing upright")):
        with q.physics.reset_context():
            dmc_quadruped._find_non_contacting_height(q.physics, np.array(orientation))  # noqa: SLF001
        rows = [q.step(np.zeros(q.action_space.shape))[4]["physics"] for _ in range(15)][-8:]
        facts = cap.describe("quadruped", {n: np.array([r[n] for r in rows]) for n in rows[0]})
        assert expected in facts and absent not in facts


def test_quadruped_captions_name_the_spider(envs):
    phys = _pose_quadruped_running(envs["quadruped"])
    assert "running fast" in cap.describe("quadruped", phys)
    texts = [cap.caption("quadruped", phys, np.random.default_rng(i)) for i in range(200)]
    named = [t for t in texts if "spider" in t or "four-legged" in t]
    assert len(named) >= 100
    assert all("run" in t or "rac" in t for t in texts)


def _pose_quadruped_running(env):
    env.reset(seed=0)
    rows = [env.step(np.zeros(env.action_space.shape))[4]["physics"] for _ in range(20)][-8:]
    phys = {n: np.array([r[n] for r in rows]) for n in rows[0]}
    phys["forward_velocity"] = np.full(8, 4.0)
    phys["com_vx"] = np.full(8, 4.0)
    return phys


# -- kitchen ----------------------------------------------------------------------------------------------------
def test_kitchen_objects_and_random_rollout():
    env = make("kitchen_microwave", seed=0)
    try:
        _, info = env.reset(seed=0)
        rows = [info["physics"]]
        for _ in range(20):
            rows.append(env.step(env.action_space.sample())[4]["physics"])
        names = list(rows[0])
        arr = np.array([[r[n] for n in names] for r in rows], np.float32)
        for end in range(len(arr)):
            facts = cap.describe("kitchen", cap.clip_physics(arr, names, end, 8))
            assert facts and not any("microwave" in f for f in facts)
        for task, value, word in (("microwave", -0.75, "microwave"), ("light", (-0.69, -0.05), "light"),
                                  ("burner", (-0.88, -0.01), "burner"), ("slide", 0.37, "cabinet")):
            env.reset(seed=0)
            env.set_object_state(**{task: value})
            phys = {n: np.full(8, v) for n, v in env.physics_descriptors().items()}
            assert any(word in f for f in cap.describe("kitchen", phys)), task
            assert all(word in t for t in cap.captions("kitchen", phys, 10, np.random.default_rng(0))), task
        env.reset(seed=0)
        env.set_object_state(microwave=-0.3)  # not within the 0.25 success threshold of -0.75
        phys = {n: np.full(8, v) for n, v in env.physics_descriptors().items()}
        facts = cap.describe("kitchen", phys)
        assert "opening the microwave fully" not in facts and "partly opening the microwave" in facts
    finally:
        env.close()


# -- every domain, paraphrases, held-out split -----------------------------------------------------------------
@pytest.mark.parametrize("domain", ["walker", "stickman", "cheetah", "quadruped"])
def test_random_rollout_facts_nonempty(envs, domain):
    env = envs[domain]
    _, info = env.reset(seed=1)
    rows = [info["physics"]] + [env.step(env.action_space.sample())[4]["physics"] for _ in range(20)]
    names = list(rows[0])
    arr = np.array([[r[n] for n in names] for r in rows], np.float32)
    rng = np.random.default_rng(0)
    for end in range(len(arr)):
        phys = cap.clip_physics(arr, names, end, 8)
        keys = cap.fact_keys(domain, phys)
        assert POSTURES.intersection(keys) and MOTIONS.intersection(keys), keys
        assert cap.describe(domain, phys)
        assert all(isinstance(t, str) and t for t in cap.captions(domain, phys, 3, rng))


def test_determinism_and_distinct_paraphrases(envs):
    phys = _pose(envs["walker"], {"rooty": -np.pi / 2})
    a = cap.captions("walker", phys, 5, np.random.default_rng(7))
    b = cap.captions("walker", phys, 5, np.random.default_rng(7))
    assert a == b and len(set(a)) == 5
    assert cap.caption("walker", phys, np.random.default_rng(3)) == cap.caption("walker", phys,
                                                                                 np.random.default_rng(3))
    texts = {cap.caption("walker", phys, np.random.default_rng(i)) for i in range(50)}
    assert len(texts) > 20
    assert any(t.startswith("lying") for t in texts)            # subject-less, like the prompts
    assert any("walker" in t or "biped" in t for t in texts)


def test_heldout_templates_and_synonyms_stay_out_of_training(envs):
    held_words = [p for _, _, held in cap.PHRASES.values() for p in held]
    held_words += [n for nouns in cap.HELDOUT_SUBJECTS.values() for n in nouns]
    markers = ["footage showing", "can be seen"]
    train_text = " | ".join([p for _, train, _ in cap.PHRASES.values() for p in train] + list(cap.TRAIN_TEMPLATES)
                            + [n for nouns in cap.SUBJECTS.values() for n in nouns]
                            + [p for extra in cap.DOMAIN_PHRASES.values() for p in extra])
    for w in held_words + markers:
        assert w not in train_text, w
    clips = [("walker", _pose(envs["walker"])), ("walker", _pose(envs["walker"], {"rooty": -np.pi / 2})),
             ("stickman", _pose(envs["stickman"], {"rooty": np.pi})), ("cheetah", _pose(envs["cheetah"])),
             ("quadruped", _pose_quadruped_running(envs["quadruped"]))]
    rng = np.random.default_rng(0)
    for domain, phys in clips:
        for text in cap.captions(domain, phys, 30, rng):
            assert not any(w in text for w in held_words + markers), text
        for text in cap.captions(domain, phys, 10, rng, split="heldout"):
            assert any(m in text for m in markers), text


def test_present_tense_covers_every_participle():
    for _, train, held in list(cap.PHRASES.values()) + [(0, e, ()) for e in cap.DOMAIN_PHRASES.values()]:
        for phrase in train + held:
            first = phrase.split()[0]
            if first.endswith("ing"):
                assert first in cap._PRESENT, first  # noqa: SLF001
    assert cap._present("lying down") == "lies down" and cap._present("upside down") == "is upside down"  # noqa


def test_prompt_words_are_in_the_vocabulary():
    """Every task prompt shares a content word (or its stem: "walk" / "walking") with its domain's phrases."""
    stop = {"like", "while", "with", "the", "fast", "clean", "fully", "open", "above", "up", "on", "down"}
    for task, prompt in PROMPTS.items():
        domain = task.split("_")[0]
        words = set(re.findall(r"[a-z]+", prompt)) - stop
        vocab = _words(domain)
        assert any(v.startswith(w) for w in words for v in vocab), (task, prompt)
