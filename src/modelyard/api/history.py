"""The query parameters and the response of history reads (a run's metric, an entity's
series): a page of points in history order, JSON or a streamed Arrow IPC stream, with the
token of the next page in ``Modelyard-Next-Page-Token`` and a ``Link: <...>; rel="next"``
header (and in the JSON body) while more remain."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import WithJsonSchema

from modelyard.schemas import Int64, MetricHistory
from modelyard.services.series_store import ARROW, MAX_PAGE, Format, Page, arrow_stream, page_json

NEXT_PAGE_HEADER = "Modelyard-Next-Page-Token"

FormatQ = Annotated[
    Literal["json", "arrow"],
    Query(description="json, or arrow for an Arrow IPC stream of step, timestamp, value."),
]
AxisQ = Annotated[
    Literal["step", "time"],
    Query(description="What start and end bound: the step, or the time (epoch milliseconds)."),
]
Start = Annotated[
    Int64 | None, Query(description="Only points whose step (or time) is at least this.")
]
End = Annotated[
    Int64 | None, Query(description="Only points whose step (or time) is at most this.")
]
# The bounds are stated in the document and checked in code, whose 400 says which maximum
# applies to the format asked for.
PageSize = Annotated[
    int, WithJsonSchema({"type": "integer", "minimum": 1, "maximum": max(MAX_PAGE.values())})
]
Limit = Annotated[
    PageSize | None,
    Query(
        description=(
            f"Most points in this response; at most {MAX_PAGE['arrow']:,} for Arrow and "
            f"{MAX_PAGE['json']:,} for JSON, which is also the default. A larger limit is "
            "refused (400), never cut down. While more points remain, the response carries "
            f"next_page_token (the {NEXT_PAGE_HEADER} header, a Link rel=next header, and "
            "in JSON the body): pass it back as page_token, with the same other parameters."
        ),
    ),
]
PageToken = Annotated[
    str | None,
    Query(
        max_length=100,
        description="The next_page_token of the previous page: the page after it.",
    ),
]

HISTORY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": MetricHistory,
        "description": (
            "A page of points in history order (step, then time, then arrival): JSON, or an "
            f"Arrow IPC stream ({ARROW}). While more remain, the {NEXT_PAGE_HEADER} and "
            'Link (rel="next") headers name the next page.'
        ),
        "content": {ARROW: {}},
    }
}


def history_response(request: Request, page: Page, fmt: Format) -> Response:
    """A page as JSON, or as an Arrow stream written a record batch at a time."""
    headers = {}
    if page.next is not None:
        token = page.next.token()
        headers[NEXT_PAGE_HEADER] = token
        headers["Link"] = f'<{request.url.include_query_params(page_token=token)}>; rel="next"'
    if fmt == "arrow":
        return StreamingResponse(arrow_stream(page), media_type=ARROW, headers=headers)
    return Response(page_json(page), media_type="application/json", headers=headers)
