"""The JSON API (``/api``), one module per resource; every endpoint checks its permission
(``policy.py``) and declares its response model (:mod:`opendvi.service.schemas`), so that the OpenAPI
document describes what it returns.

The modules add their routes to one router (:data:`router`), in the order imported here (FastAPI
matches routes in order).
"""

from __future__ import annotations

from opendvi.service.routes.api import (  # noqa: F401
    accounts,
    audit,
    families,
    fragments,
    identifications,
    operations,
    remains,
)
from opendvi.service.routes.api._common import router

__all__ = ["router"]
