"""The room domain, free of Socket.IO and HTTP: identity rules, limits, the record.

The rest of the room domain (membership, the turn queue and worker) still lives in
``sockets/``; it moves here with the structure issue.
"""
