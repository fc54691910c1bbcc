"""Logging of ``segserve serve``: uvicorn's configuration, plus the service's own loggers.

uvicorn configures only its own loggers; the service's (``app.*``, ``service.*``:
start-up phases, excluded samples, draining) would otherwise go nowhere below
WARNING. They share uvicorn's stderr handler and format, in every worker.
"""

from __future__ import annotations

import copy
from typing import Any

from uvicorn.config import LOGGING_CONFIG

SERVICE_LOGGERS = ("app", "service")


def log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's logging configuration with the service's loggers at ``level``."""
    config = copy.deepcopy(LOGGING_CONFIG)
    for name in SERVICE_LOGGERS:
        config["loggers"][name] = {
            "handlers": ["default"],
            "level": level.upper(),
            "propagate": False,
        }
    return config
