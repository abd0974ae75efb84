"""The append-only, hash-chained audit log.

Each entry stores ``prev_hash`` (the hash of the entry before it; 64 zeros
for the first) and ``hash = SHA-256(prev_hash + "\\n" + canonical JSON of
(seq, at, username, action, object_type, object_id, details))``. The
``audit_head`` row holds the last sequence number and hash; appending locks
it (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite),
so concurrent appends never fork the chain, and an entry is written in the
same transaction as the change it records.

:func:`verify_chain` recomputes every hash: an edited entry, a deleted entry
(a gap in the sequence or a head that points past the end) and a re-ordered
entry are all found. The database also refuses UPDATE and DELETE on the log
(triggers created by the migration); the chain catches those who drop them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opendvi.store.models import AuditEntry, AuditHead

GENESIS = "0" * 64


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(
    *,
    prev_hash: str,
    seq: int,
    at: str,
    username: str | None,
    action: str,
    object_type: str | None,
    object_id: str | None,
    details: str,
) -> str:
    body = canonical_json(
        {
            "seq": seq,
            "at": at,
            "username": username,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "details": details,
        }
    )
    return hashlib.sha256((prev_hash + "\n" + body).encode("utf-8")).hexdigest()


def append(
    session: Session,
    *,
    action: str,
    username: str | None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry in the session's transaction (locks the head row)."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
    seq = head.seq + 1
    when = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")
    det = canonical_json(details or {})
    oid = None if object_id is None else str(object_id)
    h = entry_hash(
        prev_hash=head.hash, seq=seq, at=when, username=username, action=action,
        object_type=object_type, object_id=oid, details=det,
    )
    entry = AuditEntry(
        seq=seq, at=when, username=username, action=action, object_type=object_type,
        object_id=oid, details=det, prev_hash=head.hash, hash=h,
    )
    session.add(entry)
    head.seq = seq
    head.hash = h
    session.flush()
    return entry


@dataclass
class ChainReport:
    """The result of :func:`verify_chain`."""

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "problems": self.problems,
        }


def verify_chain(session: Session, *, max_problems: int = 50) -> ChainReport:
    """Recompute the chain; every break is listed (up to ``max_problems``)."""
    problems: list[str] = []
    prev = GENESIS
    expected_seq = 1
    n = 0
    for e in session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars():
        n += 1
        if e.seq != expected_seq:
            problems.append(f"entry seq {e.seq}: expected seq {expected_seq} (entries missing or renumbered)")
        if e.prev_hash != prev:
            problems.append(f"entry seq {e.seq}: prev_hash does not match the hash of the entry before it")
        h = entry_hash(
            prev_hash=e.prev_hash, seq=e.seq, at=e.at, username=e.username, action=e.action,
            object_type=e.object_type, object_id=e.object_id, details=e.details,
        )
        if h != e.hash:
            problems.append(f"entry seq {e.seq}: content does not match its hash (edited)")
        prev = e.hash
        expected_seq = e.seq + 1
        if len(problems) >= max_problems:
            break
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    if head is None:
        problems.append("audit_head row is missing")
        head_seq, head_hash = -1, ""
    else:
        head_seq, head_hash = head.seq, head.hash
        if head.seq != expected_seq - 1 or head.hash != prev:
            problems.append(
                f"audit head says seq {head.seq}, the log ends at seq {expected_seq - 1} "
                "(entries deleted at the end, or the head was changed)"
            )
    return ChainReport(ok=not problems, entries=n, head_seq=head_seq, head_hash=head_hash, problems=problems)
