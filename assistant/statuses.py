"""The run statuses of the Assistants API, grouped by what a caller may do next.

One definition for the engine (which runs runs) and the service (which waits for
them), so the two never disagree about when a run is over.
"""

from __future__ import annotations

# A run in one of these will not change again.
TERMINAL_RUN_STATUSES = frozenset(
    {"completed", "failed", "cancelled", "expired", "incomplete"}
)
# A run in one of these holds its thread: no new message, no second run (WIRE.md
# 1.4 counts ``cancelling`` as active, which is our choice).  Ordered: the store
# passes it to SQL as parameters.
ACTIVE_RUN_STATUSES = ("queued", "in_progress", "requires_action", "cancelling")
# A run in one of these may still be cancelled.
CANCELLABLE_RUN_STATUSES = ("queued", "in_progress", "requires_action")
