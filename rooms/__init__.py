"""The room domain, free of Socket.IO and HTTP: membership and identity, the turn
queue and one turn worker per room, Stop, expiry, limits, the room's record, and
the protocol every client speaks (``protocol``).  ``sockets/`` and ``routes/`` call
into it; it never imports them.
"""
