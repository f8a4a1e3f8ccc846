"""Fast 64x64 rendering of the Franka kitchen (a render-only copy of the model; see ``kitchen.py``).

Out of the box the kitchen renders at < 2 frames/s in software OpenGL; the levers and their measured effect are
listed in :class:`KitchenRenderOptions`.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

from genrl.envs.rendering import RenderSettings, apply_render_settings, ensure_headless_gl, track_for_exit

# The official fixed kitchen camera (official ``envs/kitchen_extra.py``, ``MovableCamera``): shows the microwave, light
# switch, burners and slide cabinet.
CAMERA = {"distance": 2.2, "lookat": (-0.2, 0.5, 2.0), "azimuth": 70.0, "elevation": -35.0}

# ---------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class KitchenRenderOptions:
    """Kitchen-specific render speed settings (on top of :class:`RenderSettings`).

    Measured on the 2-core CPU with Mesa llvmpipe (EGL), 64x64, frames/s of ``update_scene + render`` (each
    row adds one lever to the previous; machine shared with another process, so +-30%):

    ======================================================  =========  ===================================
    settings                                                render fps  full ``env.step`` (2 repeats) /s
    ======================================================  =========  ===================================
    gymnasium-robotics default (4 shadow lights, 4096, 8x)   0.5        0.5
    shadow map 512, no MSAA                                  1.9        2.0
    no shadows                                               8.8        7.8
    no skybox                                                11.0       12.8
    RenderSettings.primitive_slices 12 (numquads 1)          17.5       13.3
    mesh_grid 24 (141,622 -> 23,189 faces)                   33         26
    no reflections (pixel-identical frames)                  100        55
    ======================================================  =========  ===================================

    Variants of the final setting: ``mesh_grid=16`` 119 fps (robot visibly blockier); shadows back on 8 fps;
    MSAA 4 12 fps. Physics alone: ~140 agent steps/s (280 base-env steps, 11k MuJoCo steps of 2 ms).
    Frames of the final setting differ from the default ones mostly by the missing shadows (brighter image);
    the objects and their state (microwave door, slide cabinet, knobs, light switch) remain clearly visible.

    Attributes:
        mesh_grid: decimate every mesh with more than ``mesh_min_faces`` faces by vertex clustering on a grid
            of ``mesh_grid`` cells along its largest extent (0 disables). Only the render copy of the model is
            changed; the robot's visual meshes (134k triangles) dominate the geometry cost.
        mesh_min_faces: meshes with at most this many faces are left as they are.
        shadows: render shadows (each of the kitchen's 4 lights casts one: 4 extra passes, ~5x slower).
        skybox: draw the skybox (only visible through a small gap from this camera).
        reflections: draw mirror reflections of reflective materials. Reflections are drawn only if both this
            and ``RenderSettings.reflections`` are True. Off by default: at the kitchen camera the frames are
            pixel-identical with and without them (measured: mean abs difference 0.0) but 3x slower.
    """

    mesh_grid: int = 24
    mesh_min_faces: int = 1000
    shadows: bool = False
    skybox: bool = False
    reflections: bool = False


def decimate_meshes(model, grid: int, min_faces: int = 1000) -> int:
    """Simplify ``model``'s meshes *in place* by vertex clustering (for a render-only copy of a model).

    Every vertex of a mesh with more than ``min_faces`` faces is snapped to the mean of the vertices in its
    grid cell (``grid`` cells along the mesh's largest extent); faces that become degenerate or duplicated are
    dropped and the face arrays (vertex, normal and texture-coordinate indices) are compacted inside the mesh's
    slot, with ``mesh_facenum`` reduced accordingly. Must run before a rendering context uploads the meshes.

    Returns:
        The total number of mesh faces after decimation.
    """
    if grid <= 0:
        return int(model.mesh_facenum.sum())
    has_normals = model.mesh_facenormal.size > 0
    has_tex = model.mesh_facetexcoord.size > 0
    for i in range(model.nmesh):
        nf = int(model.mesh_facenum[i])
        if nf <= min_faces:
            continue
        va, vn, fa = int(model.mesh_vertadr[i]), int(model.mesh_vertnum[i]), int(model.mesh_faceadr[i])
        verts = np.array(model.mesh_vert[va:va + vn], dtype=np.float64)
        lo, hi = verts.min(0), verts.max(0)
        cell = max(float((hi - lo).max()) / grid, 1e-9)
        keys = np.floor((verts - lo) / cell).astype(np.int64)
        _, cluster = np.unique(keys, axis=0, return_inverse=True)
        cluster = cluster.ravel()
        ncl = int(cluster.max()) + 1
        sums = np.zeros((ncl, 3))
        np.add.at(sums, cluster, verts)
        counts = np.bincount(cluster, minlength=ncl)[:, None]
        model.mesh_vert[va:va + vn] = (sums / counts)[cluster]
        faces = np.array(model.mesh_face[fa:fa + nf])
        fc = cluster[faces]
        keep = (fc[:, 0] != fc[:, 1]) & (fc[:, 1] != fc[:, 2]) & (fc[:, 0] != fc[:, 2])
        idx = np.flatnonzero(keep)
        # drop duplicated triangles (same three clusters, same orientation)
        rolled = np.sort(fc[idx], axis=1)
        _, first = np.unique(rolled, axis=0, return_index=True)
        idx = idx[np.sort(first)] if len(idx) else np.array([0])  # keep >= 1 face
        k = len(idx)
        model.mesh_face[fa:fa + k] = faces[idx]
        if has_normals:
            model.mesh_facenormal[fa:fa + k] = np.array(model.mesh_facenormal[fa:fa + nf])[idx]
        if has_tex and model.mesh_texcoordnum[i] > 0:
            model.mesh_facetexcoord[fa:fa + k] = np.array(model.mesh_facetexcoord[fa:fa + nf])[idx]
        model.mesh_facenum[i] = k
    return int(model.mesh_facenum.sum())


class KitchenRenderer:
    """Renders a (model, data) pair from the fixed kitchen camera with a sped-up render-only model copy.

    The OpenGL context is created explicitly for the ``MUJOCO_GL`` backend (``egl`` by default, ``osmesa``)
    instead of through ``mujoco.Renderer``, whose backend is frozen when ``mujoco`` is first imported (a user
    importing ``mujoco`` before genrl without ``MUJOCO_GL`` would otherwise get no usable context).

    Light emulation: in the kitchen model the overhead lamp blocks the spot light until the light switch's
    ``light_joint`` (qpos 18) slides open; with shadows this is what makes "light on" visible (a bright patch on
    the stove). Without shadows the spot light would always look "on", so when ``options.shadows`` is False
    the spot light's intensity is scaled by ``clip((-qpos[18] - 0.004) / 0.018, 0, 1)``, fitted to the
    brightness of shadowed renders at qpos[18] in [0, -0.05].

    Args:
        model: the physics ``mujoco.MjModel`` (copied; never modified).
        settings: :class:`RenderSettings` (``size``, ``shadowsize``, ``msaa_samples`` -> ``offsamples``,
            ``reflections``).
        options: :class:`KitchenRenderOptions`.
    """

    def __init__(self, model, settings: RenderSettings = RenderSettings(),
                 options: KitchenRenderOptions = KitchenRenderOptions()):
        backend = ensure_headless_gl().lower()
        import mujoco

        if backend == "osmesa":
            from mujoco.osmesa import GLContext
        elif backend == "glfw":
            from mujoco.glfw import GLContext
        else:
            from mujoco.egl import GLContext
        m = copy.copy(model)  # MjModel.__copy__ is a deep copy (mj_copyModel)
        self.faces = decimate_meshes(m, options.mesh_grid, options.mesh_min_faces)
        apply_render_settings(m, settings)
        if not options.shadows:
            m.light_castshadow[:] = False
        self.model = m
        self.settings, self.options = settings, options
        self.size = settings.size
        self._gl = GLContext(self.size, self.size)
        self._gl.make_current()
        self._con = mujoco.MjrContext(m, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._con)
        self._scene = mujoco.MjvScene(m, maxgeom=1000)
        self._opt = mujoco.MjvOption()
        self._pert = mujoco.MjvPerturb()
        self._rect = mujoco.MjrRect(0, 0, self.size, self.size)
        flags = self._scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = options.shadows
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = settings.reflections and options.reflections
        flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = options.skybox
        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        cam.lookat[:] = CAMERA["lookat"]
        cam.distance = CAMERA["distance"]
        cam.azimuth = CAMERA["azimuth"]
        cam.elevation = CAMERA["elevation"]
        self.camera = cam
        spots = np.flatnonzero(np.asarray(m.light_type) == int(mujoco.mjtLightType.mjLIGHT_SPOT))
        self._spot_pos = np.array(m.light_pos[spots[0]]) if len(spots) and not options.shadows else None
        self._mujoco = mujoco
        track_for_exit(renderer=self)

    def _emulate_lamp(self, data) -> None:
        mujoco = self._mujoco
        f = float(np.clip((-float(data.qpos[18]) - 0.004) / 0.018, 0.0, 1.0))
        for i in range(self._scene.nlight):
            light = self._scene.lights[i]
            if int(light.type) == int(mujoco.mjtLightType.mjLIGHT_SPOT):
                light.diffuse[:] = np.asarray(light.diffuse) * f
                light.specular[:] = np.asarray(light.specular) * f
                light.ambient[:] = np.asarray(light.ambient) * f

    def render(self, data) -> np.ndarray:
        """Render ``data`` (of the physics model). Returns a new ``uint8 [size, size, 3]`` array."""
        if self._gl is None:
            raise RuntimeError("render() called after close()")
        mujoco = self._mujoco
        self._gl.make_current()
        mujoco.mjv_updateScene(self.model, data, self._opt, self._pert, self.camera,
                               mujoco.mjtCatBit.mjCAT_ALL, self._scene)
        if self._spot_pos is not None:
            self._emulate_lamp(data)
        mujoco.mjr_render(self._rect, self._scene, self._con)
        out = np.empty((self.size, self.size, 3), dtype=np.uint8)
        mujoco.mjr_readPixels(out, None, self._rect, self._con)
        return np.ascontiguousarray(out[::-1])

    def close(self) -> None:
        """Free the GL context (idempotent)."""
        if getattr(self, "_gl", None) is not None:
            self._con.free()
            self._gl.free()
            self._gl = None
            self._con = None


# ---------------------------------------------------------------------------------------------------------------
# environment
# ---------------------------------------------------------------------------------------------------------------
