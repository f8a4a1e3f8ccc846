"""The captioner: plain-language captions of simulator clips, written from the physics state.

GenRL needs a video-language model whose text prompts (``PROMPTS`` in :mod:`genrl.envs.registry`: "spider
running fast", "lying down", "doing backflips", "stand on one foot", "punch", "opening the microwave fully open"...)
retrieve clips in which the prompt's task reward is high. We train a small CLIP-style model ourselves
(:mod:`genrl.vlm.minivlm`), so its training captions are written here by a *stand-in labeler*: rules over the
simulator's physics descriptors (``info["physics"]``, stored per step in episodes as ``physics`` /
``physics_names``) say what is *seen* in a clip (posture, motion, limbs, which kitchen object changed), and
paraphrase templates turn those facts into sentences. Only the VLM is trained on these captions; the world model,
connector and aligner never see language. The rules and their thresholds, taken from the task reward
definitions, are in :mod:`genrl.vlm.caption_facts`.

Held-out paraphrases (``split="heldout"``), never produced for ``split="train"``, so an evaluation can check that
unseen wordings of a fact still retrieve the right clips:

* templates :data:`HELDOUT_TEMPLATES`: ``"footage showing {subj} {acts}"`` and ``"here {subj} can be seen {acts}"``;
* synonyms: the ``heldout`` phrases of :data:`PHRASES` (e.g. "sprinting", "strolling", "reclining",
  "stationary", "somersaulting forward", "genuflecting", "jabbing", "overturned", "bounding");
* nouns: :data:`HELDOUT_SUBJECTS` (e.g. "four-legged crawler", "stick person", "manipulator").

A held-out caption always uses a held-out template, the held-out synonym of every mentioned fact that has one,
and a held-out noun half of the time.

Usage::

    from genrl.vlm import captions as cap
    phys = cap.clip_physics(ep["physics"], list(ep["physics_names"]), end=40, k=8)
    cap.describe("quadruped", phys)            # ['standing upright', 'running fast']
    cap.caption("quadruped", phys, np.random.default_rng(0))   # 'a spider running fast'
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from genrl.vlm.caption_facts import DOMAINS, fact_keys

__all__ = ["DOMAINS", "PHRASES", "DOMAIN_PHRASES", "SUBJECTS", "HELDOUT_SUBJECTS", "TRAIN_TEMPLATES",
           "HELDOUT_TEMPLATES", "describe", "caption", "captions", "clip_physics", "fact_keys",
           "captions_for_keys", "facts_of_keys"]

# fact key -> (priority, training phrases (the first is the canonical fact of describe()), held-out synonyms).
# Priority 3: task-defining pose/motion (always mentioned), 2: general posture, 1: details.
# Phrases are participle ("running fast") or predicate ("upside down") phrases of an unnamed subject.
PHRASES: dict[str, tuple[int, tuple[str, ...], tuple[str, ...]]] = {
    # postures
    "standing": (2, ("standing upright", "standing up straight", "standing up", "standing tall",
                     "upright on its feet"), ("erect on its feet",)),
    "crouching": (2, ("crouching", "crouched low", "squatting with bent knees", "bending its knees"), ()),
    "kneeling": (3, ("kneeling", "kneeling on the ground", "sitting on its knees", "kneeling as if praying",
                     "praying on its knees"), ("genuflecting",)),
    "lunge": (3, ("in a lunge pose", "doing a lunge", "lunging with one knee down", "in a lunge position"), ()),
    "sitting": (2, ("sitting on the ground", "sitting down", "seated on the floor"), ()),
    "lying": (3, ("lying down", "lying down horizontally", "lying flat on the ground", "lying on the floor"),
              ("reclining",)),
    "on_back": (2, ("on its back", "lying on its back", "lying face up"), ("supine",)),
    "on_front": (2, ("on its front", "lying face down", "lying on its belly"), ("prone",)),
    "legs_up": (3, ("lying down with feet up", "lifting its legs up while lying down", "lying with its feet raised",
                    "raising its legs in the air"), ()),
    "upside_down": (2, ("upside down", "inverted", "turned upside down", "flipped over"), ("overturned",)),
    "headstand": (3, ("doing a headstand", "standing on its head", "balancing on its head", "in a headstand"),
                  ("performing a headstand",)),
    "one_foot": (3, ("standing on one foot", "standing on one leg", "balancing on one leg", "on one foot"),
                 ("balancing on a single foot",)),
    "arabesque": (3, ("in an arabesque position", "doing an arabesque", "stretching one leg out behind"), ()),
    "high_kick": (3, ("kicking one leg high", "doing a high kick", "standing up and kicking",
                      "kicking a leg up in the air"), ("raising a leg overhead",)),
    "lean_forward": (2, ("leaning forward", "bending forward", "tipping forward"), ()),
    "lean_back": (2, ("leaning backward", "bending backward", "tipping backward"), ()),
    "on_ground": (2, ("on the ground", "sprawled on the floor", "down on the ground"), ()),
    "four_legs": (2, ("standing on its legs", "standing like a quadruped", "on both of its legs",
                      "in a four-legged stance"), ()),
    "crouch_low": (2, ("crouching low", "crouched low to the ground", "hunched close to the floor"), ()),
    "hind_legs": (3, ("standing on its hind legs", "standing like a human", "standing up on its back leg",
                      "standing upright like a person"), ("rearing up on its back leg",)),
    "front_leg": (3, ("standing on its front leg", "balancing upright on its front leg",
                      "doing a handstand on its front leg"), ()),
    "nose_up": (2, ("rearing up", "tilted nose up", "leaning back on its hind leg"), ()),
    "nose_down": (2, ("tipping nose down", "leaning onto its front leg", "tilted forward"), ()),
    "on_side": (2, ("on its side", "tipped over on its side", "tilted sideways"), ()),
    "tilted": (2, ("tilted", "leaning to one side", "slightly tipped over"), ()),
    "two_legs": (3, ("on two legs", "standing on two legs", "rearing up on two legs", "balancing on two legs"),
                 ("upright on a pair of legs",)),
    # limbs
    "hands_up": (3, ("raising its hands up", "holding its arms up", "lifting both hands above its head",
                     "standing with the hands up"), ("reaching for the sky",)),
    "one_hand_up": (2, ("raising one arm", "lifting one hand up", "holding one arm up"), ()),
    "punch": (3, ("punching", "throwing a punch", "boxing", "punching forward with one arm"), ("jabbing",)),
    # motion
    "still": (1, ("holding still", "not moving", "staying still", "keeping still"), ("stationary",)),
    "walk": (3, ("walking", "walking forward", "taking steps forward"), ("strolling",)),
    "walk_slow": (3, ("walking slowly", "walking slowly forward", "taking slow steps"), ("strolling",)),
    "walk_fast": (3, ("walking fast", "walking quickly forward", "walking briskly", "walking fast and clean"),
                  ("striding quickly",)),
    "walk_back": (3, ("walking backwards", "stepping backwards", "moving backward slowly"), ()),
    "run": (3, ("running", "running forward", "moving at a run"), ("sprinting",)),
    "run_fast": (3, ("running fast", "running quickly", "racing forward", "running at high speed"),
                 ("sprinting", "dashing")),
    "run_back": (3, ("running backwards", "moving backward fast", "racing backwards"), ()),
    "move_fwd": (2, ("moving forward", "sliding forward", "scooting along the floor"), ()),
    "move_back": (2, ("moving backward", "sliding backward"), ()),
    "flip_fwd": (3, ("flipping forward", "doing a front flip", "doing flips", "doing rotating flips",
                     "rotating forward in a flip"), ("somersaulting forward",)),
    "flip_back": (3, ("flipping backward", "doing a backflip", "doing backflips", "doing rotating flips",
                      "rotating backward in a flip"), ("somersaulting backward",)),
    "jumping": (3, ("jumping", "leaping into the air", "jumping up", "in the air"), ("bounding",)),
    "falling": (2, ("falling down", "falling over", "toppling over", "collapsing"), ()),
    "getting_up": (2, ("getting up", "rising up", "standing up from the ground"), ()),
    "rolling": (3, ("rolling over", "tumbling", "rolling on the ground"), ()),
    "sideways": (2, ("moving sideways", "side-stepping"), ()),
    "fidget": (1, ("moving in place", "shifting its limbs", "wiggling around"), ()),
    # kitchen: the robot arm is the subject
    "microwave_done": (3, ("opening the microwave fully", "opening the microwave", "pulling the microwave door "
                           "fully open", "next to the open microwave"), ("swinging the microwave door wide",)),
    "microwave_partly": (2, ("partly opening the microwave", "next to the half-open microwave",
                             "opening the microwave door a little"), ()),
    "microwave_progress": (3, ("pulling the microwave door open", "opening the microwave door",
                               "swinging the microwave door"), ()),
    "microwave_undo": (2, ("closing the microwave", "pushing the microwave door shut"), ()),
    "light_done": (3, ("switching the light on", "turning the light on", "flipping the light switch on",
                       "switching on the kitchen light"), ("illuminating the kitchen",)),
    "light_partly": (2, ("pushing the light switch", "nudging the light switch"), ()),
    "light_progress": (3, ("moving the light switch", "turning the light switch"), ()),
    "light_undo": (2, ("switching the light off", "turning the light off"), ()),
    "burner_done": (3, ("switching on the red burner", "turning on the bottom burner", "turning the burner knob "
                        "on", "switching the stove burner on"), ("igniting the stove",)),
    "burner_partly": (2, ("turning the burner knob a little", "nudging the burner knob"), ()),
    "burner_progress": (3, ("turning the burner knob", "twisting the stove knob"), ()),
    "burner_undo": (2, ("switching the burner off", "turning the burner knob back"), ()),
    "slide_done": (3, ("opening the slide cabinet", "sliding the cabinet above the knobs open",
                       "sliding open the upper cabinet door", "next to the open slide cabinet"),
                   ("drawing the sliding door aside",)),
    "slide_partly": (2, ("partly opening the slide cabinet", "sliding the cabinet door a little"), ()),
    "slide_progress": (3, ("sliding the cabinet door", "pushing the slide cabinet open"), ()),
    "slide_undo": (2, ("closing the slide cabinet", "sliding the cabinet door shut"), ()),
    "top_burner_on": (2, ("turning on the top burner", "twisting the top burner knob"), ()),
    "hinge_open": (2, ("opening the hinge cabinet", "swinging a cabinet door open",
                       "next to the open hinged cabinet"), ()),
    "kettle_moved": (2, ("moving the kettle", "pushing the kettle across the stove"), ()),
    "kettle_lifted": (2, ("lifting the kettle", "picking up the kettle"), ()),
    "nothing_changed": (2, ("not touching any object", "leaving everything closed",
                            "leaving the kitchen untouched"), ()),
    "arm_up": (1, ("reaching up", "raising its arm", "lifting its gripper up"), ()),
    "arm_down": (1, ("reaching down", "lowering its arm", "moving its gripper down"), ()),
    "arm_moving": (1, ("moving its arm", "swinging its arm around", "moving its gripper"), ()),
    "arm_slow": (1, ("moving its arm slowly", "barely moving its arm", "making small arm motions"), ()),
    "gripper_open": (1, ("holding its gripper open", "keeping its fingers open"), ()),
    "gripper_closed": (1, ("closing its gripper", "keeping its fingers closed"), ()),
}

# Extra training phrases of a fact in one domain only (the paper's prompts call the cheetah a quadruped).
DOMAIN_PHRASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("cheetah", "run"): ("running like a quadruped",),
    ("cheetah", "run_fast"): ("running fast like a quadruped", "galloping like a quadruped"),
    ("quadruped", "standing"): ("standing on all four legs", "standing on its four legs"),
    ("walker", "run_fast"): ("running fast and clean",),
    ("stickman", "run_fast"): ("running fast and clean",),
}

# Body nouns; the first-mention article is chosen per caption.
SUBJECTS: dict[str, tuple[str, ...]] = {
    "walker": ("walker", "two-legged walker", "biped", "bipedal robot", "two-legged robot", "robot"),
    "stickman": ("stickman", "stick figure", "humanoid", "humanoid robot", "robot"),
    "cheetah": ("cheetah", "cheetah robot", "half cheetah", "cheetah-like quadruped", "quadruped robot"),
    "quadruped": ("spider", "four-legged spider", "four-legged robot", "ant robot", "spider robot"),
    "kitchen": ("robot arm", "robotic arm", "robot", "franka robot arm", "robot in the kitchen"),
}
HELDOUT_SUBJECTS: dict[str, tuple[str, ...]] = {
    "walker": ("bipedal figure",), "stickman": ("stick person",), "cheetah": ("feline robot",),
    "quadruped": ("four-legged crawler",), "kitchen": ("manipulator",),
}

# {acts}: participle phrases joined by "and"; {finite}: the same in the present tense ("runs fast").
TRAIN_TEMPLATES = ("{acts}", "{subj} {acts}", "{subj} is {acts}", "{subj} {finite}", "a video of {subj} {acts}",
                   "a clip of {subj} {acts}")
HELDOUT_TEMPLATES = ("footage showing {subj} {acts}", "here {subj} can be seen {acts}")

# Present-tense forms of the participles that start phrases (others take "is").
_PRESENT = {w: p for w, p in (pair.split(":") for pair in (
    "balancing:balances bending:bends boxing:boxes closing:closes collapsing:collapses doing:does "
    "falling:falls flipping:flips getting:gets holding:holds jabbing:jabs jumping:jumps keeping:keeps "
    "kicking:kicks kneeling:kneels leaning:leans leaping:leaps leaving:leaves lifting:lifts lowering:lowers "
    "lunging:lunges making:makes moving:moves nudging:nudges opening:opens performing:performs picking:picks "
    "praying:prays pulling:pulls punching:punches pushing:pushes racing:races raising:raises reaching:reaches "
    "rearing:rears reclining:reclines rising:rises rolling:rolls rotating:rotates running:runs scooting:scoots "
    "shifting:shifts side-stepping:side-steps sitting:sits sliding:slides sprinting:sprints dashing:dashes "
    "squatting:squats galloping:gallops standing:stands staying:stays stepping:steps strolling:strolls "
    "striding:strides "
    "stretching:stretches swinging:swings switching:switches taking:takes throwing:throws tipping:tips "
    "toppling:topples tumbling:tumbles turning:turns twisting:twists walking:walks wiggling:wiggles "
    "bounding:bounds somersaulting:somersaults igniting:ignites illuminating:illuminates drawing:draws "
    "lying:lies crouching:crouches genuflecting:genuflects").split())}


def describe(domain: str, physics: Mapping[str, np.ndarray]) -> list[str]:
    """The short facts true for one clip (canonical phrases, e.g. ``["lying down", "on its back", "still"]``).

    Args:
        domain: ``walker``, ``cheetah``, ``quadruped``, ``stickman`` or ``kitchen``.
        physics: the clip's descriptors, name -> array ``[k]`` (see :func:`clip_physics`); SI units as in
            ``info["physics"]``.

    Returns:
        Non-empty list of phrases without a subject (the body noun is added by :func:`caption`): postures first,
        then limbs, then motion.

    Raises:
        ValueError: unknown domain (lists the valid ones) or a missing descriptor.
    """
    return facts_of_keys(fact_keys(domain, physics))


def facts_of_keys(keys: list[str]) -> list[str]:
    """The canonical phrase of each fact key (what :func:`describe` returns)."""
    return [PHRASES[key][1][0] for key in keys]


def _present(phrase: str) -> str:
    first, _, rest = phrase.partition(" ")
    if first in _PRESENT:
        return f"{_PRESENT[first]} {rest}".strip()
    return "is " + phrase


def _article(noun: str, rng: np.random.Generator) -> str:
    if rng.random() < 0.4:
        return "the " + noun
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _pick(options: Sequence[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _choose_facts(keys: list[str], rng: np.random.Generator) -> list[str]:
    """The top-priority facts (at most 3, a random subset if more) plus each other fact with probability 0.35,
    at most 3 in all, in the order of ``keys``."""
    top = max(PHRASES[k][0] for k in keys)
    first = [k for k in keys if PHRASES[k][0] == top]
    if len(first) > 3:
        first = [first[i] for i in sorted(rng.choice(len(first), 3, replace=False))]
    chosen = set(first)
    for k in keys:
        if k not in chosen and len(chosen) < 3 and rng.random() < 0.35:
            chosen.add(k)
    return [k for k in keys if k in chosen]


def caption(domain: str, physics: Mapping[str, np.ndarray], rng: np.random.Generator,
            split: str = "train") -> str:
    """One caption sentence of a clip, e.g. ``"a spider running fast"`` or ``"lying down and still"``.

    Args:
        domain, physics: as :func:`describe`.
        rng: draws the facts mentioned, phrases, noun, article and template (same rng state -> same caption).
        split: ``"train"`` (training templates and phrases only) or ``"heldout"`` (see the module docstring).

    Raises:
        ValueError: unknown domain or split, or a missing descriptor.
    """
    return _sentence(domain, fact_keys(domain, physics), rng, split)


def _sentence(domain: str, keys: list[str], rng: np.random.Generator, split: str) -> str:
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    heldout = split == "heldout"
    parts = []
    for key in _choose_facts(keys, rng):
        _, train, held = PHRASES[key]
        parts.append(_pick(held if heldout and held else train + DOMAIN_PHRASES.get((domain, key), ()), rng))
    nouns = HELDOUT_SUBJECTS[domain] if heldout and rng.random() < 0.5 else SUBJECTS[domain]
    subj = _article(_pick(nouns, rng), rng)
    template = _pick(HELDOUT_TEMPLATES if heldout else TRAIN_TEMPLATES, rng)
    return template.format(subj=subj, acts=_join(parts), finite=_join([_present(p) for p in parts]))


def captions(domain: str, physics: Mapping[str, np.ndarray], n: int, rng: np.random.Generator,
             split: str = "train") -> list[str]:
    """``n`` captions of one clip, all different where the phrase/template combinations allow it.

    If fewer than ``n`` distinct captions turn up in ``20 n`` draws the list is completed by repeating them.

    Raises:
        ValueError: ``n < 1``, unknown domain or split, or a missing descriptor.
    """
    return captions_for_keys(domain, fact_keys(domain, physics), n, rng, split)


def captions_for_keys(domain: str, keys: list[str], n: int, rng: np.random.Generator,
                      split: str = "train") -> list[str]:
    """:func:`captions` from already computed fact keys (``fact_keys(domain, physics)``), so a caller that also
    needs the facts computes them once."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    out: list[str] = []
    for _ in range(20 * n):
        text = _sentence(domain, keys, rng, split)
        if text not in out:
            out.append(text)
            if len(out) == n:
                return out
    return [out[i % len(out)] for i in range(n)]


def clip_physics(physics: np.ndarray, names: Sequence[str], end: int, k: int) -> dict[str, np.ndarray]:
    """The descriptors of the ``k`` steps ending at step ``end`` (inclusive) of an episode, as a dict.

    Args:
        physics: float ``[T, P]`` (an episode's ``physics``). names: the ``P`` column names (``physics_names``).
        end: index of the clip's last step, ``0 <= end < T``. k: clip length; steps before 0 repeat step 0
            (edge padding at the episode start, as the clip frames).

    Returns:
        name -> float32 array ``[k]``.

    Raises:
        ValueError: not 2-D, ``len(names) != P``, ``end`` out of range or ``k < 1``.
    """
    physics = np.asarray(physics)
    if physics.ndim != 2:
        raise ValueError(f"physics must be [T, P], got shape {list(physics.shape)}")
    if len(names) != physics.shape[1]:
        raise ValueError(f"{len(names)} names for {physics.shape[1]} physics columns")
    if not 0 <= end < physics.shape[0]:
        raise ValueError(f"end={end} out of range for an episode of {physics.shape[0]} steps")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rows = np.maximum(np.arange(end - k + 1, end + 1), 0)
    block = physics[rows].astype(np.float32)
    return {str(name): block[:, j] for j, name in enumerate(names)}
