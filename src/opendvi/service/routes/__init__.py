"""The service's routes: ``api/`` (the JSON API, one module per resource) and the page routers beside it.

A regular package (not a namespace one), so that every tool imports these modules under one name:
pytest's doctest collection imported ``routes/api/accounts.py`` a second time as ``api.accounts``
and added its routes to the shared router again (duplicate operation ids in the OpenAPI document).
"""
