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
(triggers created by the migration); the chain catches those who drop them,
and :func:`verify_chain` reports triggers that are missing, disabled or
neutered.

**Anchoring.** Someone with full rights on the database could delete the
log's tail, or all of it, and set ``audit_head`` to match, or write a new
chain. So the head is also written outside the database: an :class:`Anchor`
appends a *checkpoint* (sequence number, hash, time), signed with HMAC-SHA256
under a key kept outside the database, to a file beside it (SQLite:
``opendvi.sqlite3.checkpoints`` beside ``opendvi.sqlite3``; PostgreSQL:
``audit-checkpoints-HOST-PORT-DB.jsonl`` in the data directory), and
optionally to syslog. A checkpoint is written after every successful
verification and after the commit of every ``OPENDVI_AUDIT_CHECKPOINT_EVERY``-th
entry (default 100). :func:`verify_chain` checks the chain against every
checkpoint since the last restore: an entry missing or different at a
checkpointed sequence number breaks it. The key is ``OPENDVI_AUDIT_KEY``
or the file ``audit.key`` (mode 0600) beside the checkpoints, created on
first use.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from opendvi.store import keys
from opendvi.store.models import AuditEntry, AuditHead

GENESIS = "0" * 64
log = logging.getLogger("opendvi.audit")

#: a checkpoint after the commit of every N-th entry (``OPENDVI_AUDIT_CHECKPOINT_EVERY``)
CHECKPOINT_EVERY = 100
KEY_FILE = "audit.key"
_PENDING = "opendvi_audit_checkpoint"


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
    anchor = anchor_of(session)
    if anchor is not None and anchor.every > 0 and seq % anchor.every == 0:
        session.info[_PENDING] = (anchor, seq, h)  # written once the transaction commits
    return entry


# ---------------------------------------------------------------------------
# anchoring: signed checkpoints of the head outside the database
# ---------------------------------------------------------------------------


class AnchorError(Exception):
    """The anchor cannot be used (no key, a checkpoint file that cannot be written)."""


@dataclass
class Anchor:
    """Where checkpoints go (a JSON-lines file), the HMAC key, how often, and whether to syslog."""

    path: Path
    key: bytes
    every: int = CHECKPOINT_EVERY
    syslog: bool = False
    database: str = ""

    def _mac(self, record: dict[str, Any]) -> str:
        body = canonical_json({k: v for k, v in record.items() if k != "mac"})
        return hmac.new(self.key, body.encode("utf-8"), hashlib.sha256).hexdigest()

    def write(self, seq: int, head_hash: str, *, kind: str = "checkpoint",
              extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Append a signed checkpoint line (the file is created 0600)."""
        record: dict[str, Any] = {"v": 1, "kind": kind, "seq": seq, "hash": head_hash,
                                  "at": datetime.now(UTC).isoformat(timespec="seconds"),
                                  "database": self.database, **(extra or {})}
        record["mac"] = self._mac(record)
        line = (canonical_json(record) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)  # one write of one short line: appends never interleave
            os.fsync(fd)
        finally:
            os.close(fd)
        if self.syslog:
            import syslog

            syslog.openlog("opendvi", 0, syslog.LOG_USER)
            syslog.syslog(syslog.LOG_NOTICE, f"audit {kind} {self.database} seq={seq} hash={head_hash}")
        return record

    def read(self) -> tuple[list[dict[str, Any]], list[str]]:
        """The checkpoints since the last restore, and the problems of the file
        (a line that is not JSON or whose signature does not match)."""
        if not self.path.exists():
            return [], []
        problems: list[str] = []
        records: list[dict[str, Any]] = []
        for k, raw in enumerate(self.path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
                ok = isinstance(rec, dict) and hmac.compare_digest(str(rec.get("mac", "")), self._mac(rec))
            except (ValueError, TypeError):
                ok = False
            if not ok:
                problems.append(f"checkpoint file {self.path.name} line {k}: not a checkpoint signed with this key "
                                "(edited, or another key)")
                continue
            if rec.get("kind") == "restore":
                records = []
            records.append(rec)
        return records, problems


_ANCHORS: weakref.WeakKeyDictionary[Any, Anchor] = weakref.WeakKeyDictionary()


def install_anchor(engine: Any, anchor: Anchor | None) -> None:
    """Checkpoint the audit chain of ``engine``'s database with ``anchor``
    (``None``: stop). Sessions on the engine, or on an engine with other
    execution options, share it."""
    if anchor is None:
        _ANCHORS.pop(engine.pool, None)
    else:
        _ANCHORS[engine.pool] = anchor


def anchor_of(session: Session) -> Anchor | None:
    bind = session.get_bind()
    pool = getattr(bind, "pool", None)
    return _ANCHORS.get(pool) if pool is not None else None


@event.listens_for(Session, "after_commit")
def _write_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending is None:
        return
    anchor, seq, h = pending
    try:
        anchor.write(seq, h)
    except OSError as exc:  # the change is committed; a lost checkpoint only weakens the anchor
        log.warning("could not write the audit checkpoint to %s: %s", anchor.path, exc)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _database_label(url: Any) -> str:
    if url.get_backend_name() == "sqlite":
        return "sqlite"
    return f"{url.get_backend_name()}://{url.host or ''}:{url.port or ''}/{url.database or ''}"


def anchor_path(url: str | Any, data_dir: Path) -> Path:
    """The checkpoint file of a database: beside a SQLite file, else in ``data_dir``."""
    from sqlalchemy.engine import make_url

    u = make_url(url) if isinstance(url, str) else url
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        db = Path(u.database)
        return db.with_name(db.name + ".checkpoints")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{u.host or 'local'}-{u.port or 'default'}-{u.database or ''}")
    return data_dir / f"audit-checkpoints-{name}.jsonl"


def load_key(directory: Path, *, create: bool) -> bytes | None:
    """``OPENDVI_AUDIT_KEY``, else ``directory/audit.key`` (created 0600 with a
    random key when ``create``); ``None`` when there is none."""
    try:
        return keys.load_key(directory, file=KEY_FILE, env="OPENDVI_AUDIT_KEY", create=create)
    except keys.KeyFileError as exc:
        raise AnchorError(str(exc)) from None


def anchor_for(url: str | Any, data_dir: Path, *, create_key: bool = True) -> Anchor:
    """The anchor of the database at ``url`` (settings from the environment:
    ``OPENDVI_AUDIT_KEY``, ``OPENDVI_AUDIT_CHECKPOINT_EVERY``, ``OPENDVI_AUDIT_SYSLOG``)."""
    from sqlalchemy.engine import make_url

    u = make_url(url) if isinstance(url, str) else url
    path = anchor_path(u, data_dir)
    if create_key and not path.parent.exists():
        from opendvi.store.db import private_dir

        private_dir(path.parent)
    existing = path.exists()
    key = load_key(path.parent, create=create_key and not existing)
    if key is None:
        if existing:
            raise AnchorError(f"the checkpoints {path} exist but their key does not ({path.parent / KEY_FILE} or "
                              "OPENDVI_AUDIT_KEY): they cannot be checked")
        raise AnchorError(f"no audit key in {path.parent} (and OPENDVI_AUDIT_KEY is not set)")
    every = int(os.environ.get("OPENDVI_AUDIT_CHECKPOINT_EVERY", str(CHECKPOINT_EVERY)) or CHECKPOINT_EVERY)
    flag = os.environ.get("OPENDVI_AUDIT_SYSLOG", "").strip().lower() in ("1", "true", "yes", "on")
    return Anchor(path=path, key=key, every=every, syslog=flag, database=_database_label(u))


# ---------------------------------------------------------------------------
# the append-only guards
# ---------------------------------------------------------------------------


def guard_problems(session: Session) -> list[str]:
    """The database's refusal of UPDATE, DELETE (and TRUNCATE) on the log:
    each trigger present, enabled, and its function still raising."""
    dialect = session.get_bind().dialect.name
    problems: list[str] = []
    if dialect == "sqlite":
        triggers = {str(r[0]): str(r[1] or "") for r in session.execute(text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'")).all()}
        for name, when in (("audit_log_no_update", "BEFORE UPDATE"), ("audit_log_no_delete", "BEFORE DELETE")):
            sql = " ".join(triggers.get(name, "").upper().split())
            if not sql:
                problems.append(f"trigger {name} on audit_log is missing: the log can be changed")
            elif when not in sql or "RAISE(ABORT" not in sql.replace(" ", ""):
                problems.append(f"trigger {name} on audit_log no longer refuses the change")
    elif dialect == "postgresql":
        rows = session.execute(text(
            "SELECT t.tgname, t.tgenabled, pg_get_triggerdef(t.oid) FROM pg_trigger t "
            "WHERE t.tgrelid = to_regclass('audit_log') AND NOT t.tgisinternal")).all()
        found = {r[0]: (str(r[1]), r[2].upper()) for r in rows}
        for name, events in (("audit_log_no_update", ("UPDATE", "DELETE")), ("audit_log_no_truncate", ("TRUNCATE",))):
            if name not in found:
                problems.append(f"trigger {name} on audit_log is missing: the log can be changed")
                continue
            enabled, definition = found[name]
            head = definition.split(" ON ")[0]  # CREATE TRIGGER name BEFORE DELETE OR UPDATE
            if enabled not in ("O", "A"):
                problems.append(f"trigger {name} on audit_log is disabled (tgenabled = {enabled})")
            elif " BEFORE " not in head or any(e not in head.split() for e in events) \
                    or "OPENDVI_AUDIT_APPEND_ONLY" not in definition:
                problems.append(f"trigger {name} on audit_log was changed: {definition}")
        src = session.execute(text(
            "SELECT prosrc FROM pg_proc WHERE proname = 'opendvi_audit_append_only'")).scalar_one_or_none()
        if src is None:
            problems.append("function opendvi_audit_append_only() is missing")
        elif "RAISE EXCEPTION" not in " ".join(str(src).upper().split()):
            problems.append("function opendvi_audit_append_only() no longer raises: the log can be changed")
    return problems


_AUTO: Any = object()


@dataclass
class ChainReport:
    """The result of :func:`verify_chain`."""

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "problems": self.problems,
            "notes": self.notes,
            "checkpoint": self.checkpoint,
        }


def verify_chain(session: Session, *, max_problems: int = 50, anchor: Anchor | None = _AUTO,
                 guards: bool = True, write_checkpoint: bool = True) -> ChainReport:
    """Recompute the chain; every break is listed (up to ``max_problems``).

    Also checked: the append-only triggers (``guards``), and the chain against
    every checkpoint of ``anchor`` since the last restore (default: the anchor
    installed for the session's engine, if any). When all holds and
    ``write_checkpoint``, the head is written as a new checkpoint."""
    if anchor is _AUTO:
        anchor = anchor_of(session)
    problems: list[str] = []
    notes: list[str] = []
    checkpoints: list[dict[str, Any]] = []
    if anchor is not None:
        checkpoints, file_problems = anchor.read()
        problems += file_problems
    wanted = {int(c["seq"]) for c in checkpoints if isinstance(c.get("seq"), int)}
    seen_at: dict[int, str] = {}
    prev = GENESIS
    expected_seq = 1
    n = 0
    last_seq = 0
    head = None
    for _round in range(5):  # entries appended while we read: read on up to the head
        stmt = select(AuditEntry).where(AuditEntry.seq > last_seq).order_by(AuditEntry.seq)
        for e in session.execute(stmt).scalars():
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
            if e.seq in wanted:
                seen_at[e.seq] = e.hash
            prev = e.hash
            expected_seq = e.seq + 1
            last_seq = e.seq
            if len(problems) >= max_problems:
                break
        head = session.execute(
            select(AuditHead).where(AuditHead.id == 1).execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if head is None or head.seq <= last_seq or len(problems) >= max_problems:
            break
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
    for c in checkpoints:
        seq, recorded = c.get("seq"), c.get("hash")
        if not isinstance(seq, int) or seq <= 0:
            continue
        if seq > last_seq:
            problems.append(f"checkpoint of {c.get('at')} recorded seq {seq}, but the log ends at seq {last_seq}: "
                            "entries were deleted (or the whole log)")
        elif seen_at.get(seq) != recorded:
            problems.append(f"checkpoint of {c.get('at')}: entry seq {seq} does not have the hash recorded then "
                            "(the chain was rewritten)")
    if guards:
        problems += guard_problems(session)
    ok = not problems
    written = None
    if anchor is not None:
        if not checkpoints:
            notes.append(f"no checkpoint yet in {anchor.path}" + ("; this one is the first" if ok and n else ""))
        if ok and write_checkpoint and n:
            written = anchor.write(head_seq, head_hash)
    return ChainReport(ok=ok, entries=n, head_seq=head_seq, head_hash=head_hash, problems=problems, notes=notes,
                       checkpoint=written)
