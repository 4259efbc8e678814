"""Ground-truth synthetic clips for tests and benchmarks: textured planes ray-cast through a moving camera."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Plane:
    """A textured rectangle: origin corner, unit in-plane axes e1/e2, size (m) and texture (H,W,3 uint8)."""

    origin: np.ndarray
    e1: np.ndarray
    e2: np.ndarray
    size: tuple[float, float]
    texture: np.ndarray


@dataclass
class SynthFrame:
    """One rendered frame, shaped like backend.video.Frame."""

    index: int
    time: float
    image: np.ndarray


@dataclass
class SynthClip:
    """Rendered frames, their ground-truth world->camera poses (world Y up), K and the person masks."""

    frames: list[SynthFrame]
    K: np.ndarray
    R_w2c: np.ndarray  # (T,3,3)
    t_w2c: np.ndarray  # (T,3)
    masks: list[np.ndarray]  # (H,W) bool: the foreground "person" blob

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames."""
        h, w = self.frames[0].image.shape[:2]
        return w, h


def texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A corner-rich colour texture: blocky noise at several scales, slightly blurred against aliasing."""
    img = np.zeros((h, w, 3), np.float32)
    for cell, amp in ((64, 0.45), (16, 0.35), (8, 0.2)):
        small = rng.random((max(h // cell, 1), max(w // cell, 1), 3)).astype(np.float32)
        img += amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    img = cv2.GaussianBlur(img, (0, 0), 1.5)
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def checker(rng: np.random.Generator, h: int, w: int, period: int = 64) -> np.ndarray:
    """Tiles: a two-tone checker of `period` px under faint blocky noise (repetitive texture on which
    a tracker that loses the motion settles one tile off)."""
    yy, xx = np.mgrid[0:h, 0:w]
    tiles = ((yy // (period // 2) + xx // (period // 2)) % 2).astype(np.float32)
    img = (0.3 + 0.4 * tiles)[..., None] + 0.25 * (texture(rng, h, w).astype(np.float32) / 255.0 - 0.5)
    img = cv2.GaussianBlur(img, (0, 0), 1.0)
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def level_rotation(yaw: float, pitch: float = 0.0) -> np.ndarray:
    """World->camera rotation of a camera turned by `yaw` (rad, positive = to its right) and `pitch` (down)."""
    base = np.diag([1.0, -1.0, -1.0])  # level camera looking along world -Z
    cy, sy = np.cos(yaw), np.sin(yaw)
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])  # about camera +y (down): turns right
    cp, sp = np.cos(pitch), np.sin(pitch)
    Rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])  # about camera x: positive tilts the view down
    return Rx @ Ry.T @ base


def room(
    rng: np.random.Generator, half: float = 6.0, height: float = 4.0, px: int = 1024, tiled: bool = False
) -> list[Plane]:
    """A floor and four walls around the origin, floor at y = 0; `tiled` gives the walls a checker pattern."""
    x, y, z = np.eye(3)
    planes = [Plane(np.array([-half, 0, -half]), x, z, (2 * half, 2 * half), texture(rng, px, px))]
    for origin, e1 in (
        ([-half, 0, -half], x),
        ([half, 0, -half], z),
        ([half, 0, half], -x),
        ([-half, 0, half], -z),
    ):
        tex = checker(rng, px // 2, px) if tiled else texture(rng, px // 2, px)
        planes.append(Plane(np.array(origin, float), e1, y, (2 * half, height), tex))
    return planes


def render(planes: list[Plane], K: np.ndarray, R: np.ndarray, t: np.ndarray, w: int, h: int) -> np.ndarray:
    """RGB image of the planes seen by camera (R, t) world->camera, nearest surface wins."""
    u, v = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    M = (np.linalg.inv(K).T @ R).astype(np.float32)  # pixel (u, v, 1) -> world ray direction (row vector)
    rays = np.stack([u, v, np.ones_like(u)], -1) @ M
    c = -R.T @ t
    img = np.zeros((h, w, 3), np.uint8)
    depth = np.full((h, w), np.inf, np.float32)
    for p in planes:
        n = np.cross(p.e1, p.e2)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            s = np.float32((p.origin - c) @ n) / (rays @ n.astype(np.float32))
            a = np.float32((c - p.origin) @ p.e1) + s * (rays @ p.e1.astype(np.float32))
            b = np.float32((c - p.origin) @ p.e2) + s * (rays @ p.e2.astype(np.float32))
            ok = (s > 0) & (s < depth) & (a >= 0) & (a <= p.size[0]) & (b >= 0) & (b <= p.size[1])
        if not ok.any():
            continue
        th, tw = p.texture.shape[:2]
        mx = np.where(ok, a * np.float32((tw - 1) / p.size[0]), -1).astype(np.float32)
        my = np.where(ok, b * np.float32((th - 1) / p.size[1]), -1).astype(np.float32)
        sample = cv2.remap(p.texture, mx, my, cv2.INTER_LINEAR)
        img[ok] = sample[ok]
        depth[ok] = s[ok]
    return img


def _person(img: np.ndarray, f: int, T: int, rng_tex: np.ndarray) -> np.ndarray:
    """Draw a textured ellipse walking across the foreground; returns its mask."""
    h, w = img.shape[:2]
    cx = int(w * (0.2 + 0.6 * f / max(T - 1, 1)))
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (cx, int(h * 0.6)), (w // 10, h // 3), 0, 0, 360, 1, -1)
    shift = (f * 7) % 32
    tex = np.roll(rng_tex, shift, axis=1)[:h, :w]
    img[mask > 0] = tex[mask > 0]
    return mask.astype(bool)


def make_clip(
    kind: str,
    T: int = 40,
    w: int = 480,
    h: int = 270,
    fps: float = 30.0,
    person: bool = True,
    seed: int = 0,
    fov_deg: float = 55.0,
    whip_deg: float = 9.0,
) -> SynthClip:
    """Clip of `kind`: 'static', 'pan' (yaw 0 -> 20 deg, to the right), 'dolly' (moves right and turns left),
    'walk' (walks 3 m forward looking left and right, with a bob) or 'whip' (a tripod pan across tiled walls
    that speeds up smoothly to `whip_deg` per frame and slows down again)."""
    rng = np.random.default_rng(seed)
    planes = room(rng, tiled=kind == "whip")
    f = 0.5 * w / np.tan(np.radians(fov_deg) / 2)
    K = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
    person_tex = texture(rng, h + 64, w + 64)
    speed = np.sin(np.pi * np.arange(T) / max(T - 1, 1)) ** 2  # whip: per-frame turn, 0 -> 1 -> 0
    whip_yaw = np.radians(whip_deg) * (np.cumsum(speed) - speed[0])
    Rs, ts, frames, masks = [], [], [], []
    for i in range(T):
        a = i / max(T - 1, 1)
        if kind == "static":
            R, C = level_rotation(0.0, np.radians(10)), np.array([0.0, 1.5, 3.0])
        elif kind == "pan":
            R, C = level_rotation(np.radians(20.0) * a, np.radians(10)), np.array([0.0, 1.5, 3.0])
        elif kind == "dolly":
            R = level_rotation(np.radians(-8.0) * a, np.radians(15))
            C = np.array([1.5 * a, 1.5, 3.0 - 0.5 * a])
        elif kind == "walk":  # hand-held walk forward, looking around, with a bob
            R = level_rotation(np.radians(12.0) * np.sin(2 * np.pi * a), np.radians(10 + 3 * np.sin(6 * np.pi * a)))
            C = np.array([0.3 * np.sin(np.pi * a), 1.5 + 0.03 * np.sin(8 * np.pi * a), 3.5 - 3.0 * a])
        elif kind == "whip":
            R, C = level_rotation(whip_yaw[i], np.radians(5)), np.array([0.0, 1.5, 0.0])
        else:
            raise ValueError(f"unknown synthetic clip kind {kind!r}")
        t = -R @ C
        img = render(planes, K, R, t, w, h)
        masks.append(_person(img, i, T, person_tex) if person else np.zeros((h, w), bool))
        Rs.append(R)
        ts.append(t)
        frames.append(SynthFrame(i, i / fps, img))
    return SynthClip(frames, K, np.array(Rs), np.array(ts), masks)


def upscaled(clip: SynthClip, factor: int) -> SynthClip:
    """The same clip with frames, masks and K scaled up by an integer factor (cheap high-resolution clips)."""
    frames = [
        SynthFrame(f.index, f.time, cv2.resize(f.image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC))
        for f in clip.frames
    ]
    masks = [
        cv2.resize(m.astype(np.uint8), None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST) > 0
        for m in clip.masks
    ]
    K = clip.K.copy()
    K[:2] *= factor
    return SynthClip(frames, K, clip.R_w2c, clip.t_w2c, masks)


def write_video(clip: SynthClip, path: str, fps: float = 30.0) -> None:
    """Encode the clip's frames as H.264 (near lossless) with PyAV."""
    import av

    w, h = clip.size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "12", "preset": "veryfast"}
        for f in clip.frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f.image, format="rgb24")))
        out.mux(stream.encode(None))


def trajectory_error(clip: SynthClip, R_w2c: np.ndarray, t_w2c: np.ndarray) -> tuple[float, float]:
    """(RMS camera-centre error after a similarity fit, as a share of the path length; median rotation error
    in degrees after the best global rotation) of a solve against the ground truth."""
    from scipy.spatial.transform import Rotation

    Cg = -np.einsum("tji,tj->ti", clip.R_w2c, clip.t_w2c)
    Ce = -np.einsum("tji,tj->ti", R_w2c, t_w2c)
    mg, me = Cg.mean(0), Ce.mean(0)
    G, E = Cg - mg, Ce - me
    u, sv, vt = np.linalg.svd(G.T @ E)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    S = np.diag([1.0, 1.0, d])
    Rot = u @ S @ vt
    ve = (E**2).sum()
    scale = (sv * np.diag(S)).sum() / ve if ve > 0 else 0.0
    fitted = scale * E @ Rot.T + mg
    path = np.linalg.norm(np.diff(Cg, axis=0), axis=1).sum()
    ate = float(np.sqrt(((fitted - Cg) ** 2).sum(1).mean()) / path) if path > 1e-9 else 0.0
    # rotation: R_gt ~ R_est @ Q for one world rotation Q
    Q = Rotation.from_matrix(np.einsum("tji,tjk->tik", R_w2c, clip.R_w2c)).mean().as_matrix()
    err = Rotation.from_matrix(np.einsum("tij,tkj->tik", R_w2c @ Q, clip.R_w2c)).magnitude()
    return ate, float(np.degrees(np.median(err)))


@dataclass
class Accuracy:
    """Gauge-free errors of a solve against a synthetic clip's ground truth."""

    rotation_deg_true: float  # angle of the first->last relative rotation, ground truth
    rotation_deg_est: float  # same, estimated
    rotation_error_pct: float  # |est - true| / true * 100 (NaN when the true angle is under 1 degree)
    axis_error_deg: float  # angle between true and estimated rotation axes
    translation_dir_error_deg: float  # first->last camera displacement direction in the first camera's frame
    up_error_deg: float  # world up seen from the first camera
    angvel_error: float  # median |w_est - w_true| / median |w_true| over frames


def accuracy(clip: SynthClip, R_w2c: np.ndarray, t_w2c: np.ndarray, angvel: np.ndarray) -> Accuracy:
    """Compare estimated poses (any world gauge and scale) with the ground truth of `clip`."""
    from scipy.spatial.transform import Rotation

    from backend.camera.geometry import angular_velocity

    def rel(R: np.ndarray) -> np.ndarray:
        return Rotation.from_matrix(R[-1] @ R[0].T).as_rotvec()

    def disp(R: np.ndarray, t: np.ndarray) -> np.ndarray:
        C = -np.einsum("tji,tj->ti", R, t)
        return R[0] @ (C[-1] - C[0])

    def angle(a: np.ndarray, b: np.ndarray) -> float:
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        if na < 1e-12 or nb < 1e-12:
            return 0.0 if na < 1e-12 and nb < 1e-12 else 180.0
        return float(np.degrees(np.arccos(np.clip(a @ b / (na * nb), -1, 1))))

    gt, es = rel(clip.R_w2c), rel(R_w2c)
    g, e = np.degrees(np.linalg.norm(gt)), np.degrees(np.linalg.norm(es))
    times = np.array([f.time for f in clip.frames])
    w_true = angular_velocity(clip.R_w2c, times)
    scale = float(np.median(np.linalg.norm(w_true, axis=1)))
    w_err = float(np.median(np.linalg.norm(angvel - w_true, axis=1)))
    up = np.array([0.0, 1.0, 0.0])
    return Accuracy(
        rotation_deg_true=g,
        rotation_deg_est=e,
        rotation_error_pct=abs(e - g) / g * 100 if g >= 1.0 else float("nan"),
        axis_error_deg=angle(gt, es) if g >= 1.0 else float("nan"),
        translation_dir_error_deg=angle(disp(clip.R_w2c, clip.t_w2c), disp(R_w2c, t_w2c)),
        up_error_deg=angle(clip.R_w2c[0] @ up, R_w2c[0] @ up),
        angvel_error=w_err / scale if scale > 0 else w_err,
    )
