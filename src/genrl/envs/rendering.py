"""Fast headless 64x64 rendering for MuJoCo physics (dm_control).

Software OpenGL (Mesa llvmpipe through EGL or OSMesa) is the only renderer on our CPU machines, so the
per-frame cost matters: GenRL collects hundreds of thousands of frames. Three things make it fast
(measured in ``benchmarks/bench_render.py``; reference: ``cpu_feasibility.md`` section 2):

* one :class:`dm_control.mujoco.engine.Camera` is created once per environment and reused;
* the shadow map is reduced from dm_control's 2048 to 512 (visually unchanged at 64x64);
* multisample anti-aliasing is off by default (``msaa_samples=0``): about 2x faster in llvmpipe for a mean
  absolute pixel change of about 1/255 at 64x64;
* spheres, capsules and cylinders are tessellated with 12 slices instead of MuJoCo's 28 (and boxes are not
  subdivided): 2-2.5x faster render-only on walker/quadruped, visually identical at 64x64 (mean pixel change
  < 0.3/255). Every vertex passes through llvmpipe's shadow, reflection and main passes, so geometry dominates.

These settings must be applied *before* the first OpenGL context of a physics is created, which
:class:`FastCamera` does. Pitfall: ``Camera.render()`` returns the same internal buffer on every call;
:meth:`FastCamera.render` therefore always returns a fresh copy.

Select the OpenGL backend with the ``MUJOCO_GL`` environment variable (``egl`` or ``osmesa``; see README).
:func:`ensure_headless_gl` sets ``egl`` when nothing is set.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import weakref

import numpy as np

_LIVE_GL_CONTEXTS: "weakref.WeakSet" = weakref.WeakSet()   # dm_control render contexts
_LIVE_CLOSERS: "weakref.WeakSet" = weakref.WeakSet()        # other renderers with a close() (kitchen)


def _free_live_contexts() -> None:
    """Free every GL context still alive at interpreter exit, before the GL libraries' own exit hooks.

    :func:`track_for_exit` re-registers this hook last whenever a renderer is made, so it runs first (atexit is
    LIFO): otherwise ``mujoco.egl`` may terminate the EGL display before dm_control or the kitchen renderer
    free their contexts, which prints ``EGLError`` tracebacks at exit.
    """
    for closer in list(_LIVE_CLOSERS):
        try:
            closer.close()
        except Exception:  # pylint: disable=broad-except
            pass
    for ctx in list(_LIVE_GL_CONTEXTS):
        try:
            if not ctx.terminated:
                ctx._free_unconditionally()  # pylint: disable=protected-access
        except Exception:  # pylint: disable=broad-except
            pass


def track_for_exit(renderer=None, dm_control_context=None) -> None:
    """Remember a renderer (object with ``close()``) or a dm_control GL context to free at exit (weakly)."""
    if renderer is not None:
        _LIVE_CLOSERS.add(renderer)
    if dm_control_context is not None:
        _LIVE_GL_CONTEXTS.add(dm_control_context)
    atexit.unregister(_free_live_contexts)
    atexit.register(_free_live_contexts)


def ensure_headless_gl() -> str:
    """Default ``MUJOCO_GL`` to ``egl`` (headless) if the user did not choose a backend.

    Must run before ``dm_control`` / ``mujoco`` create a rendering context. Returns the backend in use.
    """
    return os.environ.setdefault("MUJOCO_GL", "egl")


@dataclasses.dataclass(frozen=True)
class RenderSettings:
    """How frames are rendered. The same settings must be used for data collection and evaluation.

    Attributes:
        size: square image side in pixels (GenRL: 64).
        shadowsize: shadow-map resolution in texels (dm_control default 2048; 512 is visually the same at 64x64
            and ~1.6x faster in software GL).
        msaa_samples: multisample anti-aliasing samples of the offscreen buffer (MuJoCo ``offsamples``;
            dm_control default 4). 0 disables MSAA: ~2x faster, slightly aliased edges.
        reflections: render the floor's mirror reflection (dm_control default True).
        primitive_slices: tessellation of spheres/capsules/cylinders (MuJoCo ``numslices``, default 28;
            ``numstacks`` is set to half of it and box subdivision ``numquads`` to 1). ``None`` keeps the model's.
    """

    size: int = 64
    shadowsize: int = 512
    msaa_samples: int = 0
    reflections: bool = True
    primitive_slices: int | None = 12


def apply_render_settings(model, settings: RenderSettings) -> None:
    """Write the shadow-map size, MSAA samples, tessellation and offscreen-buffer size of ``settings`` into a
    (``mujoco.MjModel`` or dm_control) model's ``vis`` block. Must run before a rendering context is created."""
    vis = model.vis
    vis.quality.shadowsize = settings.shadowsize
    vis.quality.offsamples = settings.msaa_samples
    if settings.primitive_slices is not None:
        vis.quality.numslices = settings.primitive_slices
        vis.quality.numstacks = max(2, settings.primitive_slices // 2)
        vis.quality.numquads = 1
    vis.global_.offwidth = max(int(vis.global_.offwidth), settings.size)
    vis.global_.offheight = max(int(vis.global_.offheight), settings.size)


class FastCamera:
    """A reused dm_control camera that returns copied ``uint8 [size, size, 3]`` RGB frames.

    Args:
        physics: a ``dm_control.mujoco.Physics`` whose GL context has not been created yet (otherwise the
            shadow/MSAA settings cannot take effect; a ``RuntimeError`` is raised in that case).
        camera_id: model camera index or name; ``-1`` for the free camera.
        settings: :class:`RenderSettings`.
        free_camera: optional dict with ``lookat`` (3,), ``distance``, ``azimuth``, ``elevation`` (degrees) to
            position the free camera (used when ``camera_id == -1``).
    """

    def __init__(self, physics, camera_id: int | str = 0, settings: RenderSettings = RenderSettings(),
                 free_camera: dict | None = None):
        ensure_headless_gl()
        import mujoco
        from dm_control.mujoco.engine import Camera

        if getattr(physics, "_contexts", None) is not None:
            raise RuntimeError("FastCamera must be created before the physics renders anything (its GL context "
                               "already exists, so shadow-map and MSAA settings would be ignored)")
        apply_render_settings(physics.model, settings)
        self.settings = settings
        self._camera = Camera(physics, height=settings.size, width=settings.size, camera_id=camera_id)
        track_for_exit(dm_control_context=physics.contexts.gl)
        if free_camera is not None:
            cam = self._camera._render_camera  # the mjvCamera dm_control renders with
            cam.type = mujoco.mjtCamera.mjCAMERA_FREE
            cam.lookat[:] = free_camera["lookat"]
            cam.distance = free_camera["distance"]
            cam.azimuth = free_camera["azimuth"]
            cam.elevation = free_camera["elevation"]
        if not settings.reflections:
            self._camera._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0

    def render(self) -> np.ndarray:
        """Render the current physics state. Returns a new ``uint8 [size, size, 3]`` array (never shared)."""
        return np.array(self._camera.render(), dtype=np.uint8, copy=True)

    def close(self) -> None:
        """Free the GL resources of this camera."""
        self._camera._scene.free()  # pylint: disable=protected-access
