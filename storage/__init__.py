"""Storage shared by the engine's store and the room directory: one ``Database``
interface, on SQLite (single mode) or PostgreSQL (``DATABASE_URL``, shared mode)."""
