"""Sessions verified a moment ago: the principal a session stood for, trusted for SESSION_CACHE_SECONDS.

Looking the session, its account and its roles up costs a database round trip, about half of what a small
request costs the server. A session checked less than `seconds` ago is trusted again without it; each hit still
checks the token (signature, expiry, its user), the session's life and idleness against the clock, and refuses
nothing the database would have accepted.

What could make an entry wrong clears the whole cache (entries carry no notice of their own):
- a session ended, an account's status, roles, department or sign-in state changed: every write unit that
  changes `auth_session`, `app_user`, `user_role` or `role` rows (a new session aside) publishes
  PRINCIPALS_CHANNEL on commit (resolvers/audit/unit.py), so this instance clears at once and every other
  instance as soon as the notice reaches it;
- SESSIONS_CHANNEL (logout, forced logout, revoked sessions) and the policy's channel (a role's permissions and
  second-factor rule) do too;
- a lost notice connection: the notifier treats every channel as changed when it reconnects.
So a change made on another instance holds there within the notice's delivery (milliseconds), and within
`seconds` at worst if Redis loses the notice. 0 switches the cache off (every request asks the database).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from policies.access import Principal

_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Verified:
    principal: Principal
    expires_at: datetime  # the session's life
    last_seen_at: datetime  # as the database had it (or as this instance last touched it)
    checked: float  # time.monotonic() of the database look-up


class SessionCache:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entries: dict[str, Verified] = {}
        self.generation = 0  # bumped by every clear: a look-up that started before one is not stored

    def get(self, session_id: str) -> Verified | None:
        entry = self._entries.get(session_id)
        if entry is None:
            return None
        if time.monotonic() - entry.checked >= self.seconds:
            del self._entries[session_id]
            return None
        return entry

    def put(self, session_id: str, entry: Verified, generation: int) -> None:
        if self.seconds <= 0 or generation != self.generation:
            return  # cleared while the look-up ran: what it read may be older than the change
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()
        self._entries[session_id] = entry

    def forget(self, session_id: str) -> None:
        self._entries.pop(session_id, None)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    async def cleared(self) -> None:
        """The notifier's callback."""
        self.clear()
