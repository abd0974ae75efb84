"""Sign-in throttling: per account and per client address, exponential back-off.

Each failed sign-in counts against the account name typed (known or not:
the answer must not tell which) and against the client's address. The first
``free`` failures of a key cost nothing; every later one locks the key for
``base * 2**k`` seconds (k = 0, 1, 2, ..., at most ``cap``). While a key is
locked, sign-ins with it are refused at once (429 with ``Retry-After``)
without a database query or an argon2 check, so a flood costs the service
almost nothing. A success forgets the account's failures (not the address's).
Keys are forgotten ``forget`` seconds after their last failure, and at most
``max_keys`` are kept (the oldest go first), so typed names cannot fill the
memory.

The state is per process: ``opendvi serve`` runs one. Several processes
behind a balancer each throttle on their own (a multiple of the limits).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Key:
    failures: int = 0
    locked_until: float = 0.0
    last: float = 0.0


@dataclass(frozen=True)
class Lockout:
    """A lock that a failure has just set (written to the audit log)."""

    scope: str  # "account" or "address"
    key: str
    failures: int
    seconds: float


class LoginThrottle:
    def __init__(
        self,
        *,
        account_free: int = 5,
        address_free: int = 20,
        base: float = 1.0,
        cap: float = 900.0,
        forget: float = 3600.0,
        max_keys: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free = {"account": account_free, "address": address_free}
        self.base = base
        self.cap = cap
        self.forget = forget
        self.max_keys = max_keys
        self.clock = clock
        self._keys: OrderedDict[tuple[str, str], _Key] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def account_key(username: str) -> str:
        return username.strip().lower()[:64]

    def _get(self, scope: str, key: str, now: float, *, create: bool) -> _Key | None:
        k = (scope, key)
        state = self._keys.get(k)
        if state is not None and now - state.last > self.forget and state.locked_until <= now:
            del self._keys[k]
            state = None
        if state is None and create:
            state = _Key(last=now)
            self._keys[k] = state
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        if state is not None:
            self._keys.move_to_end(k)
        return state

    def retry_after(self, *, account: str, address: str) -> float:
        """Seconds until a sign-in with this account from this address may be tried (0: now)."""
        now = self.clock()
        with self._lock:
            wait = 0.0
            for scope, key in (("account", self.account_key(account)), ("address", address)):
                state = self._get(scope, key, now, create=False)
                if state is not None and state.locked_until > now:
                    wait = max(wait, state.locked_until - now)
            return wait

    def failure(self, *, account: str, address: str) -> list[Lockout]:
        """Count a failed sign-in; returns the locks it set."""
        now = self.clock()
        locks: list[Lockout] = []
        with self._lock:
            for scope, key in (("account", self.account_key(account)), ("address", address)):
                state = self._get(scope, key, now, create=True)
                assert state is not None
                state.failures += 1
                state.last = now
                over = state.failures - self.free[scope]
                if over > 0:
                    seconds = min(self.cap, self.base * 2.0 ** min(over - 1, 60))
                    state.locked_until = now + seconds
                    locks.append(Lockout(scope=scope, key=key, failures=state.failures, seconds=seconds))
        return locks

    def success(self, *, account: str) -> int:
        """A correct sign-in: forget the account's failures; returns how many there were."""
        now = self.clock()
        with self._lock:
            state = self._get("account", self.account_key(account), now, create=False)
            if state is None:
                return 0
            del self._keys[("account", self.account_key(account))]
            return state.failures

    def __len__(self) -> int:
        return len(self._keys)
