"""Keypoint regressors: each mediapipe landmark (33 body, 21 per hand) as a documented weighted sum of
named mesh vertices and/or SMPL-X joints, for the default model and for SMPL-X / MANO.

Named vertices use `smplx.vertex_ids` keys where they exist (nose, leye, lear, lthumb, LHeel, ...).
For SMPL-X and MANO the ids are the smplx package's own; for the default model the generator
(`build_default_model.pick_vertices`) finds the same points on the MakeHuman mesh by geometry and stores
them in the npz, plus a few the smplx package has no id for (eye corners, mouth corners, second toe).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from protocol.skeleton import MEDIAPIPE_HAND_NAMES, MEDIAPIPE_POSE_NAMES


@dataclass(frozen=True)
class Term:
    """One addend of a landmark: weight x (named vertex | SMPL-X joint)."""

    source: str  # "vertex" | "joint"
    name: str  # vertex name (see module doc) or a protocol.skeleton joint name
    weight: float = 1.0


def _v(name: str, weight: float = 1.0) -> Term:
    """A named-vertex term."""
    return Term("vertex", name, weight)


def _j(name: str, weight: float = 1.0) -> Term:
    """A joint term."""
    return Term("joint", name, weight)


Table = Mapping[str, tuple[Term, ...]]


def _body_common() -> dict[str, tuple[Term, ...]]:
    """Landmarks both body models place the same way (limbs on joints, feet and face on vertices)."""
    table: dict[str, tuple[Term, ...]] = {
        "nose": (_v("nose"),),  # tip of the nose
        "left_eye": (_v("leye"),),  # front of the left eyeball (pupil)
        "right_eye": (_v("reye"),),
        "left_ear": (_v("lear"),),  # left ear, outer surface
        "right_ear": (_v("rear"),),
    }
    for side, cap in (("left", "L"), ("right", "R")):
        table |= {
            f"{side}_shoulder": (_j(f"{side}_shoulder"),),  # glenohumeral joint
            f"{side}_elbow": (_j(f"{side}_elbow"),),
            f"{side}_wrist": (_j(f"{side}_wrist"),),
            f"{side}_pinky": (_j(f"{side}_pinky1"),),  # mediapipe: pinky knuckle (MCP)
            f"{side}_index": (_j(f"{side}_index1"),),  # mediapipe: index knuckle (MCP)
            f"{side}_thumb": (_j(f"{side}_thumb2"),),  # mediapipe: thumb MCP ("second knuckle")
            f"{side}_hip": (_j(f"{side}_hip"),),
            f"{side}_knee": (_j(f"{side}_knee"),),
            f"{side}_ankle": (_j(f"{side}_ankle"),),
            f"{side}_heel": (_v(f"{cap}Heel"),),  # back of the heel, at the sole
        }
    return table


def _default_body() -> dict[str, tuple[Term, ...]]:
    """The default model: every face and foot landmark is a vertex picked on the MakeHuman mesh."""
    table = _body_common()
    for side, short, cap in (("left", "l", "L"), ("right", "r", "R")):
        table |= {
            f"{side}_eye_inner": (_v(f"{short}eye_inner"),),  # inner eye corner (skin by the caruncle)
            f"{side}_eye_outer": (_v(f"{short}eye_outer"),),  # outer eye corner
            f"mouth_{side}": (_v(f"mouth_{side}"),),  # lip corner, the most lateral lip vertex
            f"{side}_foot_index": (_v(f"{cap}FootIndex"),),  # tip of the second toe
        }
    return table


def _smplx_body() -> dict[str, tuple[Term, ...]]:
    """SMPL-X: the smplx package has no eye-corner or mouth-corner ids, so those are combinations of its
    eye and nose vertices (weights sum to 1, so they move rigidly with the head); approximate."""
    table = _body_common()
    table |= {
        # Eye corners: a quarter of the inter-pupil distance inwards / outwards from the pupil.
        "left_eye_inner": (_v("leye", 0.75), _v("reye", 0.25)),
        "left_eye_outer": (_v("leye", 1.25), _v("reye", -0.25)),
        "right_eye_inner": (_v("reye", 0.75), _v("leye", 0.25)),
        "right_eye_outer": (_v("reye", 1.25), _v("leye", -0.25)),
        # Mouth corners: below the nose tip by 0.7 x (nose - mid-eyes), out by 0.35 x the eye distance.
        "mouth_left": (_v("nose", 1.7), _v("reye", -0.7)),
        "mouth_right": (_v("nose", 1.7), _v("leye", -0.7)),
        # Foot index: between the big-toe and small-toe tips (about the second toe).
        "left_foot_index": (_v("LBigToe", 0.5), _v("LSmallToe", 0.5)),
        "right_foot_index": (_v("RBigToe", 0.5), _v("RSmallToe", 0.5)),
    }
    return table


def hand_table(side: str) -> dict[str, tuple[Term, ...]]:
    """The 21 mediapipe hand landmarks of one side: knuckles on SMPL-X finger joints, tips on vertices."""
    short = side[0]
    table: dict[str, tuple[Term, ...]] = {
        "wrist": (_j(f"{side}_wrist"),),
        "thumb_cmc": (_j(f"{side}_thumb1"),),  # base of the thumb metacarpal
        "thumb_mcp": (_j(f"{side}_thumb2"),),
        "thumb_ip": (_j(f"{side}_thumb3"),),
        "thumb_tip": (_v(f"{short}thumb"),),  # fingertip vertex
    }
    for finger in ("index", "middle", "ring", "pinky"):
        table |= {
            f"{finger}_mcp": (_j(f"{side}_{finger}1"),),
            f"{finger}_pip": (_j(f"{side}_{finger}2"),),
            f"{finger}_dip": (_j(f"{side}_{finger}3"),),
            f"{finger}_tip": (_v(f"{short}{finger}"),),  # fingertip vertex
        }
    return table


DEFAULT_BODY_LANDMARKS: Table = _default_body()
SMPLX_BODY_LANDMARKS: Table = _smplx_body()
HAND_LANDMARKS: Mapping[str, Table] = {side: hand_table(side) for side in ("left", "right")}


def smplx_vertex_ids() -> dict[str, int]:
    """The smplx package's own SMPL-X landmark vertex ids (nose, eyes, ears, fingertips, toes, heels)."""
    from smplx.vertex_ids import vertex_ids

    return dict(vertex_ids["smplx"])


def mano_vertex_ids(side: str) -> dict[str, int]:
    """The smplx package's MANO fingertip ids, keyed like the body ids (lthumb / rthumb, ...)."""
    from smplx.vertex_ids import vertex_ids

    return {f"{side[0]}{finger}": int(i) for finger, i in vertex_ids["mano"].items()}


@dataclass
class Regressor:
    """A landmark table compiled into gather indices/weights over concat([vertices, joints])."""

    indices: Tensor  # (L,k) long
    weights: Tensor  # (L,k) float; short rows padded with weight 0


def compile_table(table: Table, order: Sequence[str], vertex_ids: Mapping[str, int],
                  joint_index: Mapping[str, int], num_vertices: int) -> Regressor:
    """Compile `table` in landmark `order`; joints are addressed after the vertices (num_vertices + j)."""
    rows: list[list[tuple[int, float]]] = []
    for name in order:
        row = []
        for term in table[name]:
            if term.source == "vertex":
                row.append((int(vertex_ids[term.name]), term.weight))
            else:
                row.append((num_vertices + int(joint_index[term.name]), term.weight))
        rows.append(row)
    k = max(len(r) for r in rows)
    idx = torch.zeros(len(rows), k, dtype=torch.long)
    w = torch.zeros(len(rows), k)
    for i, row in enumerate(rows):
        idx[i] = row[0][0]  # padding repeats the first point with weight 0
        for c, (j, weight) in enumerate(row):
            idx[i, c], w[i, c] = j, weight
    return Regressor(idx, w)


BODY_ORDER: tuple[str, ...] = MEDIAPIPE_POSE_NAMES
HAND_ORDER: tuple[str, ...] = MEDIAPIPE_HAND_NAMES
