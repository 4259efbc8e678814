"""Error codes shared by the backend and every client, and the exception that carries them."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Every error a server may answer with; clients show `message` to the user."""

    BAD_REQUEST = "E_BAD_REQUEST"
    VERSION = "E_VERSION"
    TOO_LARGE = "E_TOO_LARGE"
    AUTH = "E_AUTH"
    NOT_FOUND = "E_NOT_FOUND"
    DECODE = "E_DECODE"
    NO_PERSON = "E_NO_PERSON"
    MODEL_MISSING = "E_MODEL_MISSING"
    UNKNOWN_PRESET = "E_UNKNOWN_PRESET"
    BUSY = "E_BUSY"
    CANCELLED = "E_CANCELLED"
    INTERNAL = "E_INTERNAL"


class VidrigError(Exception):
    """An error with a protocol code, a plain-words message and optional JSON-able details."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, code: ErrorCode | None = None, details: dict | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.details = details or {}

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"


class BadRequest(VidrigError):
    """The request or message is malformed or names an unknown setting."""

    code = ErrorCode.BAD_REQUEST


class VersionMismatch(VidrigError):
    """The peer speaks a protocol version this side does not."""

    code = ErrorCode.VERSION


class TooLarge(VidrigError):
    """A message or file is over the size limit."""

    code = ErrorCode.TOO_LARGE


class NotFound(VidrigError):
    """A job, file or result that was asked for does not exist."""

    code = ErrorCode.NOT_FOUND


class DecodeError(VidrigError):
    """A video cannot be decoded: corrupt, empty or unsupported."""

    code = ErrorCode.DECODE


class NoPerson(VidrigError):
    """No person was found anywhere in the clip."""

    code = ErrorCode.NO_PERSON


class ModelMissing(VidrigError):
    """A body model's files are not where they were looked for."""

    code = ErrorCode.MODEL_MISSING


class UnknownPreset(VidrigError):
    """A preset or method name that is not registered."""

    code = ErrorCode.UNKNOWN_PRESET


class Cancelled(VidrigError):
    """The job was cancelled by its client."""

    code = ErrorCode.CANCELLED
