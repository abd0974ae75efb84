"""Repository functions: every option keyword-only, one session passed in.

The caller owns the transaction (``opendvi.store.db.transaction``); these
functions add, flush and raise :mod:`opendvi.store.errors`, never commit.
Every change that matters writes its audit entry in the same transaction.

One module per aggregate, each with its ``__all__``, every public name re-exported here
(``from opendvi.store import repositories as repo; repo.get_remains(...)``):

- :mod:`.users`: accounts, sign-in sessions, TOTP
- :mod:`.operations`: operations, their dashboard and the queries of their plots
- :mod:`.queries`: :func:`one_by`, :func:`add_unique`, :class:`Page`, :func:`paginate` and the list
  filters shared by pages, API and exports, reading the audit log
- :mod:`.remains`: remains and profile versions
- :mod:`.families`: families, missing persons (and their details), reference donors
- :mod:`.imports`: frequency and profile imports, :class:`ImportSummary`
- :mod:`.case_import`: importing a ``dvi-case/1`` case (read, check, write)
- :mod:`.case`: the stored case for matching (:func:`build_case`)
- :mod:`.lineage`: Y-STR and mtDNA: haplotypes of profile versions, an operation's lineage databases
- :mod:`.runs`: matching runs as jobs, bulk candidates
- :mod:`.fragments`: fragments of one person: a run's links and suggested groups, proposal, four-eyes
  confirmation, split
- :mod:`.decisions`: candidates and identifications: reading them, the decision policy, the evidence
  rules, proposing and deciding
"""

import sys

from opendvi.store.models import utcnow
from opendvi.store.repositories.case import *  # noqa: F403
from opendvi.store.repositories.case_import import *  # noqa: F403
from opendvi.store.repositories.decisions import *  # noqa: F403
from opendvi.store.repositories.families import *  # noqa: F403
from opendvi.store.repositories.fragments import *  # noqa: F403
from opendvi.store.repositories.imports import *  # noqa: F403
from opendvi.store.repositories.lineage import *  # noqa: F403
from opendvi.store.repositories.operations import *  # noqa: F403
from opendvi.store.repositories.queries import *  # noqa: F403
from opendvi.store.repositories.remains import *  # noqa: F403
from opendvi.store.repositories.runs import *  # noqa: F403
from opendvi.store.repositories.users import *  # noqa: F403

_SUBMODULES = ("case", "case_import", "decisions", "families", "fragments", "imports", "lineage", "operations",
               "queries", "remains", "runs", "users")
__all__ = ["utcnow", *(name for m in _SUBMODULES for name in sys.modules[f"{__name__}.{m}"].__all__)]
