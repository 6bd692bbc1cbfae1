"""An embedded implementation of the OpenAI Assistants API v2 wire subset."""

from .engine import Engine
from .engine import create_engine

__all__ = ["Engine", "create_engine"]
