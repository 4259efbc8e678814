"""`fit`: the baseline whole-body solve as a Method (the solve itself is the shared `backend.fitting.wholebody`)."""

from __future__ import annotations

from backend.fitting.wholebody.job import solve_whole_body
from backend.fitting.wholebody.settings import FitSettings
from backend.methods.base import JobContext
from protocol.result import Result


class FitMethod:
    """IK-initialised, robust whole-clip optimisation of body, hands, jaw and one shape against 2D+3D keypoints."""

    name = "fit"
    produces = frozenset({"body", "camera", "scene"})

    def run(self, job: JobContext, settings: FitSettings) -> Result:
        """Solve the clip's body in the metric, ground-level world."""
        return solve_whole_body(job, settings, self.name)
