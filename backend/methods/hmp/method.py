"""Method `hmp`: per-frame hands from perception, refined by latent optimisation under the hand motion prior."""

from __future__ import annotations

import hashlib
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from protocol.errors import ModelMissing, NoPerson
from protocol.result import CameraTrack as ResultCamera
from protocol.result import HandMotion, Result, ResultMeta

from ..base import JobContext
from .settings import HmpSettings

if TYPE_CHECKING:
    from backend.perception.observations import Observations
    from backend.priors.hand_motion.fitting import FitConfig, Wrist

SIDES = ("left", "right")  # observation index 0 = the person's left hand


def fit_config(settings: HmpSettings) -> FitConfig:
    """The fitting configuration these settings ask for."""
    from backend.priors.hand_motion.fitting import FitConfig

    return replace(
        FitConfig(), ik_iters=settings.ik_iters, stage1_iters=settings.stage1_iters,
        stage2_iters=settings.stage2_iters, lr=settings.lr, lr_step=settings.lr_step, overlap=settings.overlap,
        w1_kp2d=settings.kp2d_weight, w2_kp2d=settings.kp2d_weight, w2_prior=settings.prior_weight,
        w2_kp3d=settings.kp3d_weight, w2_residual=settings.residual_weight,
        w_orient_accel=settings.orient_accel_weight, gm_sigma_cm=settings.kp3d_sigma_cm,
    )


def _checkpoint_path(settings: HmpSettings) -> Path:
    """The prior checkpoint these settings name (the shipped one by default)."""
    from backend.priors.hand_motion.model import DEFAULT_CHECKPOINT

    return Path(settings.checkpoint).expanduser() if settings.checkpoint else DEFAULT_CHECKPOINT


def _file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, or ModelMissing naming the path."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ModelMissing(f"hand motion prior checkpoint not readable at {path}: {exc}") from exc


class HmpMethod:
    """Both hands (or one) as MANO-style motions in the world frame, with gaps filled by the prior; optionally
    on top of a `fit` body whose wrists carry the hands."""

    name = "hmp"
    produces = frozenset({"hands"})

    def run(self, job: JobContext, settings: HmpSettings) -> Result:
        """Observations -> camera (or the `fit` body) -> per-hand fit (cached as stage `hmp`) -> Result."""
        if settings.body or not settings.static_camera:
            job.start_camera()  # solved beside perception
        obs = job.observations()
        body = self._body(job) if settings.body else None
        camera = body.camera if body is not None and body.camera is not None else hands_camera(job, settings, len(obs))
        sides = SIDES if settings.hands == "both" else (settings.hands,)
        wanted = [s for s in sides if int(obs.hand_valid[:, SIDES.index(s)].sum()) >= settings.min_detections]
        if not wanted and body is None:
            raise NoPerson(f"no {' or '.join(sides)} hand was detected in at least {settings.min_detections} "
                           f"frames of {job.video}")
        wrists = self._wrists(job, body, wanted) if body is not None else {}
        stage_settings: dict[str, Any] = {f.name: getattr(settings, f.name) for f in fields(settings)}
        stage_settings["camera_K"] = np.asarray(camera.K).round(3).tolist()
        stage_settings["prior_sha256"] = _file_digest(_checkpoint_path(settings))  # a retrained prior re-runs
        arrays = job.stage(
            "hmp", {**stage_settings, "sides": wanted},
            lambda: self._fit(job, settings, obs, camera, wanted, wrists),
            lambda d: d, lambda d: {k: np.asarray(v) for k, v in d.items()},
        )
        hands = {
            side: HandMotion(global_orient=arrays[f"{side}_global_orient"], hand_pose=arrays[f"{side}_hand_pose"],
                             betas=arrays[f"{side}_betas"], transl=arrays[f"{side}_transl"],
                             valid=arrays[f"{side}_valid"].astype(bool))
            for side in wanted
        }
        meta = ResultMeta(
            method=self.name, preset=job.spec.preset, settings=job.settings.to_dict(),
            body_model=job.spec.body_model, gender=job.spec.gender, fps=obs.fps,
            frame_indices=[int(i) for i in obs.frame_indices], timings=dict(job.timings),
        )
        if body is None:
            return Result(meta=meta, hands=hands, camera=camera)
        if body.smplx is not None:  # the body's own finger solve gives way to the prior's
            for side, hand in hands.items():
                setattr(body.smplx, f"{side}_hand_pose", np.asarray(hand.hand_pose, np.float32))
        meta.body_model = body.meta.body_model
        meta.gender = body.meta.gender
        body.meta = meta
        body.hands = hands
        return body

    def _body(self, job: JobContext) -> Result:
        """The whole-body solve with its default settings (its own cached stage, shared with method `fit`)."""
        from backend.fitting.wholebody.job import solve_whole_body
        from backend.fitting.wholebody.settings import FitSettings

        return solve_whole_body(job, FitSettings(), "hmp")

    def _wrists(self, job: JobContext, body: Result, sides: list[str]) -> dict[str, Wrist]:
        """Each hand's world orientation and translation from the body's posed wrist joint."""
        import torch

        from backend.geometry.rotations import matrix_to_axis_angle
        from backend.models.base import NUM_BETAS, BodyPose
        from backend.priors.hand_motion.fitting import HandKinematics, Wrist
        from protocol.skeleton import JOINT_INDEX, NUM_JOINTS

        sm = body.smplx
        if sm is None:
            raise NoPerson(f"the body fit of {job.video} returned no body to attach the hands to")
        t = sm.num_frames
        betas = torch.as_tensor(sm.betas, dtype=torch.float32)[None]
        with torch.no_grad():
            out = job.body_model()(BodyPose.from_full_pose(
                torch.as_tensor(sm.poses(), dtype=torch.float32).reshape(t, NUM_JOINTS, 3), betas=betas,
                transl=torch.as_tensor(sm.transl, dtype=torch.float32)))
            wrists: dict[str, Wrist] = {}
            for side in sides:
                idx = JOINT_INDEX[f"{side}_wrist"]
                # the default hand shares the body's shape space; MANO's is its own, so it keeps its mean shape
                hand_betas = betas if job.spec.body_model == "default" else torch.zeros(1, NUM_BETAS)
                root = HandKinematics(job.hand_model(side)).rest(hand_betas)[0][0]
                wrists[side] = Wrist(global_orient=matrix_to_axis_angle(out.joint_rotations[:, idx]).numpy(),
                                     transl=(out.joints[:, idx] - root).numpy(), betas=hand_betas[0].numpy())
        return wrists

    def _fit(self, job: JobContext, settings: HmpSettings, obs: Observations, camera: ResultCamera,
             sides: list[str], wrists: dict[str, Wrist]) -> dict[str, np.ndarray]:
        """Fit each wanted hand; arrays named `<side>_<parameter>`."""
        from backend.priors.hand_motion.fitting import CameraTrack, HandTrack, fit_hand
        from backend.priors.hand_motion.model import load_hand_prior

        prior = load_hand_prior(_checkpoint_path(settings))
        cfg = fit_config(settings)
        cam = CameraTrack(K=np.asarray(camera.K), R_w2c=np.asarray(camera.R_w2c), t_w2c=np.asarray(camera.t_w2c))
        out: dict[str, np.ndarray] = {}
        for i, side in enumerate(sides):
            col = SIDES.index(side)
            track = HandTrack(side, obs.hand_kp2d[:, col], obs.hand_kp3d[:, col], obs.hand_valid[:, col])

            def tick(f: float, i: int = i, side: str = side) -> None:
                job.check_cancelled()
                job.progress("hmp", (i + f) / len(sides), f"{side} hand")

            fit, _, timings = fit_hand(track, cam, job.hand_model(side), prior, cfg, tick, wrists.get(side))
            for name in ("global_orient", "hand_pose", "betas", "transl", "valid"):
                out[f"{side}_{name}"] = np.asarray(getattr(fit, name))
            job.timings.update({f"hmp_{side}_{k}": v for k, v in timings.items()})
        return out


def hands_camera(job: JobContext, settings: HmpSettings, n: int) -> ResultCamera:
    """A fixed camera (static_camera) or the camera stage's solve."""
    if settings.static_camera:
        from backend.camera.intrinsics import intrinsics

        k = intrinsics(job.info, job.settings.section("camera"))
        # a fixed camera at the origin looking down -Z of a Y-up world (OpenCV axes: y down, z forward)
        r_w2c = np.broadcast_to(np.diag([1.0, -1.0, -1.0]), (n, 3, 3)).copy()
        return ResultCamera(K=k, R_w2c=r_w2c, t_w2c=np.zeros((n, 3)), angvel=np.zeros((n, 3)), static=True,
                            scale_known=False)
    solve = job.camera()
    return ResultCamera(K=solve.K, R_w2c=solve.R_w2c, t_w2c=solve.t_w2c, angvel=solve.angvel,
                        static=solve.static, scale_known=solve.scale_known)
