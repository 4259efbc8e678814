"""Plain-words sentences for every error the panel can show (protocol E_* codes and the add-on's own)."""

from __future__ import annotations

from .link import BACKEND_DOWN, BACKEND_LOST

VIDEO_MISSING = "VIDEO_MISSING"
NO_RESULT_FILE = "NO_RESULT_FILE"

SENTENCES: dict[str, str] = {
    "E_BAD_REQUEST": "The backend did not accept the request",
    "E_VERSION": "The add-on and the backend are different VidRig versions; install matching versions of both",
    "E_TOO_LARGE": "The data was larger than the backend accepts",
    "E_AUTH": "The backend refused the connection: check the CURVE keys folder in the add-on preferences",
    "E_NOT_FOUND": "The backend could not find the file or job it was asked for",
    "E_DECODE": "The video could not be read: it may be corrupt or in an unsupported format",
    "E_NO_PERSON": "No person was found in the video",
    "E_MODEL_MISSING": "A body model file is missing: set the model folder in the add-on preferences",
    "E_UNKNOWN_PRESET": "The backend has no preset of that name: press Connect to refresh the preset list",
    "E_BUSY": "The backend is busy with other jobs; try again when they finish",
    "E_CANCELLED": "The job was cancelled",
    "E_INTERNAL": "The backend failed unexpectedly; open the backend log for details",
    BACKEND_DOWN: "The VidRig backend is not running or not reachable: start it (vidrig serve, or Start Backend "
    "in the panel) and check the endpoint in the add-on preferences",
    BACKEND_LOST: "The backend stopped answering during the job: it was closed or crashed; open the backend log",
    VIDEO_MISSING: "The video file does not exist",
    NO_RESULT_FILE: "The result file could not be read",
}


def explain(code: str, detail: str = "") -> str:
    """One or two plain sentences for an error code, with the first line of the detail (never a traceback)."""
    sentence = SENTENCES.get(code, "Something went wrong")
    first_line = detail.strip().splitlines()[0].strip() if detail.strip() else ""
    if first_line.startswith("Traceback"):
        first_line = ""
    if first_line:
        return f"{sentence}. ({first_line})"
    return f"{sentence}."
