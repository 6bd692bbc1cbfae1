"""Storage helpers shared by the engine's store and the room directory."""
