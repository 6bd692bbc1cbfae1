"""An embedded implementation of the OpenAI Assistants API v2 wire subset."""

from .api import create_api
from .engine import Engine
from .engine import create_engine
from .store import StoreBusyError
from .store import StoreInUseError

__all__ = ["Engine", "StoreBusyError", "StoreInUseError", "create_api", "create_engine"]
