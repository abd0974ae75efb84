"""Imports parsed and checked in a process of their own, beside the serving threads.

Parsing and checking an upload is pure Python work that holds the interpreter lock: a
``dvi-case/1`` of 100 remains took 28 ms of the 55 ms its import held a worker process, and in
that time every reader of the process waited for the lock, again after each of its database
calls (``docs/service.md``, Concurrency). The app's lifespan therefore owns one
:class:`~concurrent.futures.ProcessPoolExecutor` of one worker process (``OPENDVI_IMPORT_PROCESSES``,
default 1; ``0``: parse in the request's thread, as without a lifespan, e.g. a test client outside
``with``). The request's thread hands it the uploaded bytes and waits without the lock; the case
comes back pickled (about 1 ms) and only the short write transaction runs in the serving process.

The functions run in the child are the same as the inline ones, with the request's language: a
refusal is the same :class:`~opendvi.store.errors.ImportValidationError` (file, line, field) in either.
"""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from opendvi import i18n
from opendvi.core.case import Case, Sample
from opendvi.core.errors import OpenDVIError
from opendvi.i18n import gettext as _
from opendvi.store.errors import ImportValidationError

log = logging.getLogger("opendvi.service")

#: environment variable: processes parsing imports per serving process (``0``: in the request's thread)
PROCESSES_ENV = "OPENDVI_IMPORT_PROCESSES"
DEFAULT_PROCESSES = 1

T = TypeVar("T")


# ---------------------------------------------------------------------------
# the parsing itself (run in the child, or inline)
# ---------------------------------------------------------------------------


def case_from_upload(raw: bytes | None, data: Any, filename: str) -> Case:
    """A ``dvi-case/1`` case from the uploaded bytes (``raw``) or the parsed JSON (``data``), its unseen
    alleles added; every problem of the document is an :class:`ImportValidationError`."""
    from opendvi.io.case_json import CaseDocumentError, case_from_dict, load_json

    if raw is not None:
        try:  # size, nesting and number of values checked before parsing (opendvi.io.limits)
            data = load_json(raw.removeprefix(b"\xef\xbb\xbf"), path=filename)
        except OpenDVIError as exc:
            raise ImportValidationError([str(exc)], filename=filename) from None
        except RecursionError:
            raise ImportValidationError([_("%(file)s: the JSON is nested too deeply", file=filename)],
                                        filename=filename) from None
    try:
        case = case_from_dict(data, path=filename)
        case.with_unseen_alleles()
    except CaseDocumentError as exc:  # every problem of the document, one a line
        raise ImportValidationError(exc.lines(), filename=filename) from None
    except OpenDVIError as exc:
        raise ImportValidationError([str(exc)], filename=filename) from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ImportValidationError([_("%(file)s: malformed dvi-case/1 document (%(why)s)", file=filename,
                                       why=exc)], filename=filename) from None
    except RecursionError:
        raise ImportValidationError([_("%(file)s: the document is nested too deeply", file=filename)],
                                    filename=filename) from None
    return case


@dataclass
class ParsedFile:
    """What an uploaded file of another format brings: a case, or remains' profiles with their Y-STR
    haplotypes (``dvi-case/1`` spelling); the format and the reader's notes."""

    format: str
    case: Case | None = None
    samples: list[Sample] | None = None
    y_haplotypes: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def file_from_upload(raw: bytes, filename: str) -> ParsedFile:
    """An uploaded file of any format :func:`opendvi.io.convert.load` reads, the format told from the
    name and the first line; an unreadable one is an :class:`ImportValidationError`."""
    from opendvi.io.convert import load
    from opendvi.io.lineage_json import y_haplotype_to_dict

    try:  # the upload as it came, named as the user named it
        ds = load(io.BytesIO(raw), filename=filename)
        notes = list(ds.notes)
        samples, y_haps = ds.profiles.samples_and_haplotypes(notes=notes) if ds.profiles is not None \
            else (None, {})
    except OpenDVIError as exc:
        raise ImportValidationError([str(exc)], filename=filename) from None
    return ParsedFile(format=ds.format, case=ds.case, samples=list(samples) if samples is not None else None,
                      y_haplotypes={sid: y_haplotype_to_dict(h) for sid, h in y_haps.items()}, notes=notes)


def families_from_upload(families_raw: bytes, families_name: str, profiles_raw: bytes | None,
                         profiles_name: str | None, markers_json: list[Any], theta: float,
                         name: str) -> tuple[Case, list[str], dict[tuple[str, str], str]]:
    """The case of a families template (CSV or Excel) with its members' profiles (from
    ``profiles_raw``, or the workbook's profiles sheet), on the operation's markers: the case, the
    readers' notes and the reference samples' barcodes by (family, member)."""
    from opendvi.io.case_json import parse_markers
    from opendvi.io.convert import assemble_case, load

    notes: list[str] = []
    try:  # the uploads as they came, named as the user named them
        workbook = Path(families_name).suffix.lower() in (".xlsx", ".xlsm")
        fds = load(io.BytesIO(families_raw), "xlsx" if workbook else "families-csv", filename=families_name)
        if fds.family_table is None:
            raise ImportValidationError(
                [_("%(file)s: no families sheet (columns family, id, father, mother, sex, missing, sample)",
                   file=families_name)], filename=families_name)
        table = fds.family_table
        samples: dict[str, Any] = {}
        if profiles_raw is None and fds.profiles is not None:  # a workbook with a profiles sheet
            notes.extend(fds.notes)
            samples = {s.id: s for s in fds.profiles.samples(notes=notes)}
        if profiles_raw is not None:
            ds = load(io.BytesIO(profiles_raw), filename=profiles_name or "profiles")
            notes.extend(ds.notes)
            if ds.profiles is None:
                raise ImportValidationError(
                    [_("%(file)s: a %(format)s file holds no profiles", file=profiles_name,
                       format=ds.format)], filename=families_name)
            samples = {s.id: s for s in ds.profiles.samples(notes=notes)}
        families = table.build(samples, notes=notes)
        markers = parse_markers(markers_json)
        case = assemble_case(name=name, families=families, markers=markers, theta=theta, notes=notes)
    except ImportValidationError:  # already naming the file and the problem
        raise
    except OpenDVIError as exc:
        raise ImportValidationError([str(exc)], filename=families_name) from None
    barcodes = {(fid, pid): code for fid, _people, _miss, codes in table.families for pid, code in codes.items()}
    return case, notes, barcodes


# ---------------------------------------------------------------------------
# the child's side: results and refusals as plain, picklable values
# ---------------------------------------------------------------------------


@dataclass
class _Refused:
    problems: list[Any]
    message: str


def _in_child(locale: str, fn: Callable[..., T], *args: Any) -> T | _Refused:
    with i18n.use_locale(locale):
        try:
            return fn(*args)
        except ImportValidationError as exc:  # its constructor takes keywords: sent as plain values
            return _Refused(exc.problems, str(exc))


def _watch_parent(parent: int, every_s: float = 2.0) -> None:
    """The child's initializer: its CPU priority below the serving threads' (parsing is batch work,
    ``service/priority.py``), and it ends when its serving process is gone (killed without its
    lifespan's shutdown), instead of waiting for uploads that will never come."""
    import time

    from opendvi.service.priority import lower_priority

    lower_priority()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(0)

    threading.Thread(target=watch, name="opendvi-import-parent", daemon=True).start()


def _ready() -> bool:
    """Run once at start: the child imports what parsing needs before the first upload comes."""
    from opendvi.io import case_json, convert  # noqa: F401

    return True


# ---------------------------------------------------------------------------
# the pool, owned by the app's lifespan
# ---------------------------------------------------------------------------


class ImportPool:
    """One worker process that parses uploads (``spawn``: the serving process has threads, and a
    forked child would inherit their locks). A child that dies (killed for memory by a hostile
    file) fails that import with a 500 and is replaced for the next one; a pool whose first child
    cannot start (the main module re-runs in it, as multiprocessing does) parses inline from then on."""

    def __init__(self, processes: int = DEFAULT_PROCESSES) -> None:
        self.processes = processes
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        #: a child has answered once: a later death is the upload's doing, not the host's
        self._started = False
        #: no child could start here (a ``__main__`` that is not import-safe, no ``spawn``): parse inline
        self.disabled = False

    def _get(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                                     initializer=_watch_parent, initargs=(os.getpid(),))
            return self._executor

    def warm(self) -> None:
        """Start the process now (in the background: nothing waits for it)."""

        def started(future: Any) -> None:
            if not future.cancelled() and future.exception() is None:
                self._started = True

        self._get().submit(_ready).add_done_callback(started)

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the child, in the request's language; its refusal raised here."""
        if self.disabled:
            return fn(*args)
        executor = self._get()
        try:
            out = executor.submit(_in_child, i18n.get_locale(), fn, *args).result()
        except BrokenProcessPool:
            with self._lock:  # the next import gets a fresh process
                if self._executor is executor:
                    self._executor = None
            executor.shutdown(wait=False, cancel_futures=True)
            if self._started:
                raise
            log.warning("no import process could start; uploads are parsed in the serving threads")
            self.disabled = True
            return fn(*args)
        self._started = True
        if isinstance(out, _Refused):
            refusal = ImportValidationError(out.problems)
            refusal.args = (out.message,)  # its message as the child wrote it (file name included)
            raise refusal
        return out

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


#: the pools of the apps whose lifespan runs in this process (the latest is used)
_POOLS: list[ImportPool] = []


def configured_processes() -> int:
    return max(0, int(os.environ.get(PROCESSES_ENV) or DEFAULT_PROCESSES))


@contextlib.contextmanager
def import_pool(*, processes: int | None = None, warm: bool = True) -> Iterator[ImportPool | None]:
    """The lifespan's pool: imports parse in it while it is open (none when ``processes`` is 0)."""
    n = configured_processes() if processes is None else processes
    if n <= 0:
        yield None
        return
    pool = ImportPool(n)
    if warm:
        pool.warm()
    _POOLS.append(pool)
    try:
        yield pool
    finally:
        _POOLS.remove(pool)
        pool.close()


def parse(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in the import process when a lifespan opened one, else here."""
    pool = _POOLS[-1] if _POOLS else None
    return pool.run(fn, *args) if pool is not None else fn(*args)

