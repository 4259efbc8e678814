"""Where the shared motion capture and hand tables live: $VIDRIG_DATA, else `shared/data` beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA = Path(os.environ.get("VIDRIG_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
