"""Reconstruction methods; built-in ones are registered here by import path so listing them stays cheap."""

from .registry import MethodEntry, register

BUILTIN: tuple[MethodEntry, ...] = ()

for _entry in BUILTIN:
    register(_entry)
