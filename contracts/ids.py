"""Request and event ids: 128 random bits as 32 hex chars, made without a system call.

``uuid.uuid4()`` reads ``os.urandom``, which releases the GIL; under load the event-writer thread then takes it
and the request path waits up to a whole switch interval to get it back (seen in the bench profile). These ids
are identifiers, not secrets, so a Mersenne Twister seeded from the OS (and re-seeded in forked children) will do.
"""

from __future__ import annotations

import os
import random

__all__ = ["new_id"]

_rng = random.Random()
os.register_at_fork(after_in_child=_rng.seed)


def new_id() -> str:
    return f"{_rng.getrandbits(128):032x}"
