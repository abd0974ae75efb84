"""Sign-in throttling: per account and per client address, exponential back-off.

Each failed sign-in counts against the account name typed (known or not:
the answer must not tell which) and against the client's address. The first
``free`` failures of a key cost nothing; every later one locks the key for
``base * 2**k`` seconds (k = 0, 1, 2, ..., at most ``cap``). While a key is
locked, sign-ins with it are refused at once (429 with ``Retry-After``)
without an argon2 check, so a flood costs the service almost nothing. A
success forgets the account's failures (not the address's). Keys are
forgotten ``forget`` seconds after their last failure, and at most
``max_keys`` are kept (the oldest go first), so typed names cannot fill the
memory or the table.

Where the state lives: the service keeps it in the database (table
``login_throttle``, one short write transaction per failure, one indexed read
per sign-in), so that every worker process of ``opendvi serve --workers N``,
and every server on the same database, shares one lockout. Without an engine
(unit tests, tools) it is kept in this process's memory. Times are the wall
clock (``time.time``), the one clock that processes share.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy import Engine, Table, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from opendvi.store.db import BEGIN_OPTION
from opendvi.store.models import LoginThrottleKey


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


class _State(Protocol):
    """The keys' states, read and changed inside one :meth:`_Store.open` block."""

    def get(self, scope: str, key: str) -> _Key | None: ...
    def put(self, scope: str, key: str, state: _Key, *, new: bool) -> None: ...
    def drop(self, scope: str, key: str) -> None: ...
    def prune(self, now: float, forget: float, max_keys: int) -> None: ...


class _MemoryState:
    def __init__(self) -> None:
        self.keys: OrderedDict[tuple[str, str], _Key] = OrderedDict()
        self.lock = threading.Lock()

    @contextmanager
    def open(self, *, write: bool) -> Iterator[_State]:
        with self.lock:
            yield self

    def get(self, scope: str, key: str) -> _Key | None:
        state = self.keys.get((scope, key))
        if state is not None:
            self.keys.move_to_end((scope, key))
        return state

    def put(self, scope: str, key: str, state: _Key, *, new: bool) -> None:
        self.keys[(scope, key)] = state
        self.keys.move_to_end((scope, key))

    def drop(self, scope: str, key: str) -> None:
        self.keys.pop((scope, key), None)

    def prune(self, now: float, forget: float, max_keys: int) -> None:
        while len(self.keys) > max_keys:
            self.keys.popitem(last=False)

    def __len__(self) -> int:
        return len(self.keys)


class _TableState:
    """The ``login_throttle`` table; each block is its own connection and transaction (threads and
    processes share nothing else): a write block is ``BEGIN IMMEDIATE`` on SQLite, and on PostgreSQL
    locks its rows (created first if missing, so two first failures cannot both insert)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reader = engine.execution_options(**{BEGIN_OPTION: "deferred"})

    @contextmanager
    def open(self, *, write: bool) -> Iterator[_State]:
        with (self.engine if write else self.reader).begin() as conn:
            yield _TableTransaction(conn, write=write)

    def __len__(self) -> int:
        with self.reader.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(_TABLE)) or 0)


_TABLE = cast(Table, LoginThrottleKey.__table__)


class _TableTransaction:
    def __init__(self, conn: Any, *, write: bool) -> None:
        self.conn = conn
        self.write = write

    def get(self, scope: str, key: str) -> _Key | None:
        t = _TABLE
        stmt = select(t.c.failures, t.c.locked_until, t.c.last).where(t.c.scope == scope, t.c.key == key)
        if self.write:
            # the row exists from here on (a concurrent first failure waits for this one), locked to the end
            dialect = self.conn.dialect.name
            if dialect in ("postgresql", "sqlite"):
                ins = (pg_insert(t) if dialect == "postgresql" else sqlite_insert(t)).values(
                    scope=scope, key=key, failures=0, locked_until=0.0, last=0.0).on_conflict_do_nothing()
                self.conn.execute(ins)
            stmt = stmt.with_for_update()
        row = self.conn.execute(stmt).first()
        if row is None or (self.write and row.failures == 0 and row.last == 0.0):
            return None  # no failure stored (the row just made is a placeholder)
        return _Key(failures=row.failures, locked_until=row.locked_until, last=row.last)

    def put(self, scope: str, key: str, state: _Key, *, new: bool) -> None:
        t = _TABLE
        values = {"failures": state.failures, "locked_until": state.locked_until, "last": state.last}
        if new and self.conn.dialect.name not in ("postgresql", "sqlite"):
            self.conn.execute(insert(t).values(scope=scope, key=key, **values))
        else:
            self.conn.execute(update(t).where(t.c.scope == scope, t.c.key == key).values(**values))

    def drop(self, scope: str, key: str) -> None:
        t = _TABLE
        self.conn.execute(delete(t).where(t.c.scope == scope, t.c.key == key))

    def prune(self, now: float, forget: float, max_keys: int) -> None:
        t = _TABLE
        self.conn.execute(delete(t).where(t.c.last < now - forget, t.c.locked_until <= now))
        extra = (self.conn.scalar(select(func.count()).select_from(t)) or 0) - max_keys
        if extra > 0:
            oldest = select(t.c.last).order_by(t.c.last).limit(1).offset(extra - 1).scalar_subquery()
            self.conn.execute(delete(t).where(t.c.last <= oldest))


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
        clock: Callable[[], float] = time.time,
        engine: Engine | None = None,
    ) -> None:
        self.free = {"account": account_free, "address": address_free}
        self.base = base
        self.cap = cap
        self.forget = forget
        self.max_keys = max_keys
        self.clock = clock
        self._state: _MemoryState | _TableState = _TableState(engine) if engine is not None else _MemoryState()

    @staticmethod
    def account_key(username: str) -> str:
        return username.strip().lower()[:64]

    def _live(self, st: _State, scope: str, key: str, now: float) -> _Key | None:
        state = st.get(scope, key)
        if state is not None and now - state.last > self.forget and state.locked_until <= now:
            return None  # forgotten
        return state

    def retry_after(self, *, account: str, address: str) -> float:
        """Seconds until a sign-in with this account from this address may be tried (0: now)."""
        now = self.clock()
        wait = 0.0
        with self._state.open(write=False) as st:
            for scope, key in (("account", self.account_key(account)), ("address", address)):
                state = self._live(st, scope, key, now)
                if state is not None and state.locked_until > now:
                    wait = max(wait, state.locked_until - now)
        return wait

    def failure(self, *, account: str, address: str) -> list[Lockout]:
        """Count a failed sign-in; returns the locks it set."""
        now = self.clock()
        locks: list[Lockout] = []
        with self._state.open(write=True) as st:
            for scope, key in (("account", self.account_key(account)), ("address", address)):
                stored = st.get(scope, key)
                state = stored
                if state is None or (now - state.last > self.forget and state.locked_until <= now):
                    state = _Key(last=now)  # new, or forgotten: counting starts again
                state.failures += 1
                state.last = now
                over = state.failures - self.free[scope]
                if over > 0:
                    seconds = min(self.cap, self.base * 2.0 ** min(over - 1, 60))
                    state.locked_until = now + seconds
                    locks.append(Lockout(scope=scope, key=key, failures=state.failures, seconds=seconds))
                st.put(scope, key, state, new=stored is None)
            st.prune(now, self.forget, self.max_keys)
        return locks

    def success(self, *, account: str) -> int:
        """A correct sign-in: forget the account's failures; returns how many there were."""
        now = self.clock()
        key = self.account_key(account)
        with self._state.open(write=False) as st:  # the common case: nothing to forget, no write
            if st.get("account", key) is None:
                return 0
        with self._state.open(write=True) as st:
            state = self._live(st, "account", key, now)
            st.drop("account", key)
            return state.failures if state is not None else 0

    def __len__(self) -> int:
        return len(self._state)
