"""What operators see: metrics, readiness, the per-turn log line, log formats and
the reverse-proxy settings.  Nothing here knows Socket.IO handlers or the engine's
internals; it observes what the room is told and what the backends answer."""
