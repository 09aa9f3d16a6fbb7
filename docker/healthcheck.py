"""Container health check: a Dask server's /health page answers "ok" (scheduler and worker
services set HEALTH_URL), else the image's baked Whisper is where workers will look for it.

Exit 0 when healthy, 1 otherwise, as Docker's HEALTHCHECK reads it.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def dask_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().strip() == b"ok"
    except OSError:
        return False


def model_baked() -> bool:
    from pipeline.models.whisper_runtime import BUNDLED_MODEL_NAME, cache_dir

    return (cache_dir() / BUNDLED_MODEL_NAME / "model.sha256").is_file()


def main() -> int:
    url = os.environ.get("HEALTH_URL")
    return 0 if (dask_answers(url) if url else model_baked()) else 1


if __name__ == "__main__":
    sys.exit(main())
