"""Reconstruction methods; built-in ones are registered here by import path so listing them stays cheap."""

from .registry import MethodEntry, register

BUILTIN: tuple[MethodEntry, ...] = (
    MethodEntry("fit", frozenset({"body", "camera", "scene"}), "backend.methods.fit.method:FitMethod",
                "backend.fitting.wholebody.settings:FitSettings",
                "baseline whole-body solve: analytic IK, then a robust whole-clip optimisation of body, hands, shape"),
    MethodEntry("hmp", frozenset({"hands", "body", "camera", "scene"}), "backend.methods.hmp.method:HmpMethod",
                "backend.methods.hmp.settings:HmpSettings", "hands with a learned hand motion prior (HMP)"),
)

for _entry in BUILTIN:
    register(_entry)
