"""An embedded implementation of the OpenAI Assistants API v2 wire subset."""

from .engine import Engine
from .engine import create_engine
from .store import StoreBusyError

__all__ = ["Engine", "StoreBusyError", "create_engine"]
