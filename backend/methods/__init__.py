"""Reconstruction methods; built-in ones are registered here by import path so listing them stays cheap."""

from .registry import MethodEntry, register

BUILTIN: tuple[MethodEntry, ...] = (
    MethodEntry("fit", frozenset({"body", "camera", "scene"}), "backend.methods.fit.method:FitMethod",
                "backend.methods.fit.settings:FitSettings",
                "baseline whole-body solve: analytic IK, then a robust whole-clip optimisation of body, hands, shape"),
)

for _entry in BUILTIN:
    register(_entry)
