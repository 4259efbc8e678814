"""Build Results with every part filled in, and compare two Results field by field (arrays byte-exact)."""

from __future__ import annotations

import dataclasses

import numpy as np

from protocol.result import CameraTrack, HandMotion, RestData, Result, ResultMeta, Scene, SmplxMotion


def full_result(
    t: int = 5,
    *,
    seed: int = 0,
    n_points: int = 7,
    n_vertices: int = 11,
    n_faces: int = 9,
    n_contacts: int = 4,
    hypotheses: int = 2,
) -> Result:
    """A Result holding every optional part (body, both hands, camera, scene, confidences, rest data)."""
    rng = np.random.default_rng(seed)

    def f32(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    smplx = SmplxMotion(
        global_orient=f32(t, 3),
        body_pose=f32(t, 21, 3),
        jaw_pose=f32(t, 3),
        leye_pose=f32(t, 3),
        reye_pose=f32(t, 3),
        left_hand_pose=f32(t, 15, 3),
        right_hand_pose=f32(t, 15, 3),
        betas=f32(10),
        transl=f32(t, 3),
        global_orient_c=f32(t, 3),
        transl_c=f32(t, 3),
        expression=f32(t, 10),
    )
    hands = {
        side: HandMotion(
            global_orient=f32(t, 3),
            hand_pose=f32(t, 15, 3),
            betas=f32(10),
            transl=f32(t, 3),
            valid=rng.random(t) > 0.3,
        )
        for side in ("left", "right")
    }
    camera = CameraTrack(
        K=np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]]),
        R_w2c=np.tile(np.eye(3), (t, 1, 1)) + rng.standard_normal((t, 3, 3)) * 1e-3,
        t_w2c=rng.standard_normal((t, 3)),
        angvel=rng.standard_normal((t, 3)),
        static=False,
        scale_known=True,
    )
    scene = Scene(points=f32(n_points, 3), colors=rng.integers(0, 256, (n_points, 3), dtype=np.uint8))
    rest = RestData(
        joints=f32(55, 3),
        parents=np.arange(-1, 54, dtype=np.int32),
        vertices=f32(n_vertices, 3),
        faces=rng.integers(0, n_vertices, (n_faces, 3), dtype=np.int32),
        skin_indices=rng.integers(0, 55, (n_vertices, 4), dtype=np.int32),
        skin_weights=np.full((n_vertices, 4), 0.25, np.float32),
    )
    meta = ResultMeta(
        method="fit",
        preset="quality",
        settings={"method": {"iterations": 3}, "camera": {"fov_deg": 55.0}},
        body_model="default",
        gender="neutral",
        fps=29.97,
        frame_indices=list(range(10, 10 + t)),
        timings={"perception": 1.5, "total": 2.0},
    )
    return Result(
        meta=meta,
        smplx=smplx,
        hands=hands,
        camera=camera,
        scene=scene,
        confidence=rng.random((t, 55)).astype(np.float32),
        contacts=rng.random((t, n_contacts)).astype(np.float32),
        hypotheses=f32(hypotheses, t, 165) if hypotheses else None,
        rest=rest,
    )


def assert_same(a: object, b: object, path: str = "result") -> None:
    """Recursively assert equality: arrays by dtype, shape and bytes; dataclasses and dicts field by field."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), f"{path}: array vs {type(b).__name__}"
        assert a.dtype == b.dtype, f"{path}: dtype {a.dtype} != {b.dtype}"
        assert a.shape == b.shape, f"{path}: shape {a.shape} != {b.shape}"
        assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), f"{path}: values differ"
    elif dataclasses.is_dataclass(a):
        assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{path}[{key!r}]")
    else:
        assert a == b and type(a) is type(b), f"{path}: {a!r} != {b!r}"
