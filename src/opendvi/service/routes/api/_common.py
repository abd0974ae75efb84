"""What the API's routers share: the route class, the identifier types, the paged-list dependency.

No ``from __future__ import annotations`` here: :func:`paging` builds its parameters' annotations
from its arguments, and FastAPI reads them from the function it returns.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import Field

from opendvi.service.errors import APIError
from opendvi.store import repositories as repo

#: codes chosen in the service (usernames, operations): characters safe in a URL
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
#: identifiers that came with imported files (barcodes, family and member codes): any characters,
#: in a ``{x:path}`` route so that "/" works; clients percent-encode them
Ident = Annotated[str, Field(min_length=1, max_length=200)]
#: a database id in a path
Id = Annotated[int, Field(ge=1, le=2**62)]


class ViewRoute(APIRoute):
    """A route whose response has exactly the keys the view gave: a key a view leaves out (a name the
    caller may not read, a detail of another endpoint) stays out, although the response model lists it."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        kwargs["response_model_exclude_unset"] = True
        super().__init__(path, endpoint, **kwargs)


#: the API's one router: each module of the package adds its resource's routes to it, in the order
#: ``__init__`` imports them (FastAPI matches routes in that order)
router = APIRouter(prefix="/api", route_class=ViewRoute)


@dataclass
class ListQuery:
    """A paged list's request: the page, its size and order, and where its headers go."""

    request: Request
    response: Response
    page: int
    per_page: int
    sort: str

    def fetch(self, fn: Callable[..., repo.Page], *, per_page: int | None = None, **filters: Any) -> repo.Page:
        """``fn`` (a ``repositories.page_*`` query) for this page; a bad sort or filter is 422."""
        try:
            return fn(page=self.page, per_page=per_page or self.per_page, sort=self.sort, **filters)
        except ValueError as exc:
            raise APIError(422, str(exc), code="invalid") from None

    def empty(self) -> repo.Page:
        return repo.Page(items=[], total=0, page=self.page, per_page=self.per_page, sort=self.sort)

    def out(self, pg: repo.Page, items: list[Any]) -> list[Any]:
        """The rows in the body (a JSON array, as before paging), the total and the page in headers:
        ``X-Total-Count``, ``X-Page``, ``X-Per-Page``, ``X-Sort`` and ``Link`` (``rel="next"``,
        ``rel="prev"``, RFC 8288)."""
        headers = self.response.headers
        pages = max(1, -(-pg.total // pg.per_page))
        headers["X-Total-Count"] = str(pg.total)
        headers["X-Page"] = str(pg.page)
        headers["X-Per-Page"] = str(pg.per_page)
        headers["X-Sort"] = pg.sort
        links = []
        for rel, page in (("prev", pg.page - 1), ("next", pg.page + 1)):
            if 1 <= page <= pages:
                links.append(f'<{self.request.url.include_query_params(page=page)}>; rel="{rel}"')
        if links:
            headers["Link"] = ", ".join(links)
        return items


def paging(default_sort: str, sorts: str | None = None, *, default_per_page: int = 50, max_per_page: int = 500,
           per_page_help: str | None = "rows per page", sort_pattern: str | None = None,
           sort_max_length: int | None = 32) -> Callable[..., ListQuery]:
    """The dependency of a paged list: ``page``, ``per_page`` and ``sort`` (``sorts``: the keys, for
    the documentation) with this list's default order and page size."""

    def dependency(
        request: Request,
        response: Response,
        page: Annotated[int, Query(ge=1, le=1_000_000, description="page, from 1")] = 1,
        per_page: Annotated[int, Query(ge=1, le=max_per_page, description=per_page_help)] = default_per_page,
        sort: Annotated[str, Query(max_length=sort_max_length, pattern=sort_pattern,
                                   description=sorts)] = default_sort,
    ) -> ListQuery:
        return ListQuery(request=request, response=response, page=page, per_page=per_page, sort=sort)

    return dependency
