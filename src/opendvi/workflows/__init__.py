"""The application layer: the one way the CLI and the service reach the engines
(:mod:`opendvi.dvi`, :mod:`opendvi.screening`, :mod:`opendvi.power`), ``docs/architecture.md``.

- :mod:`~opendvi.workflows.identify`: pairwise LRs, the identification workflow (solve), remains
  against remains, the demo's overview, national screening; typed results (frozen dataclasses);
- :mod:`~opendvi.workflows.matching`: the service's matching run (a worker job);
- :mod:`~opendvi.workflows.planning`: power planning;
- :mod:`~opendvi.workflows.intake`: case files of either kind, simulated cases;
- :mod:`~opendvi.workflows.results`: results as JSON-ready dicts, LRs as text.

The algorithms stay in the domain packages; this layer orchestrates, converts and serialises. The
modules are imported one by one (``from opendvi.workflows.identify import solve``), so a command
loads only the engines it uses.
"""
