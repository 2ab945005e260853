"""Activity and audit: the change log with filters, and an aspect's versions with diffs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse

from modelyard.api.deps import Readable, StoreDep
from modelyard.authz import (
    Level,
    allow,
    urn_query,
)
from modelyard.errors import InvalidInput, NotFound
from modelyard.metadata.store import Store
from modelyard.metadata.urn import parse_urn
from modelyard.schemas import AspectVersion, Serial
from modelyard.services import changes, entities, suggestions
from modelyard.web.change_rows import change_rows
from modelyard.web.diff import changed_keys, line_diff, readable
from modelyard.web.templating import render

router = APIRouter()

PAGE_SIZE = 50
MOMENT_FORMATS = (  # a date, or what a datetime-local input sends (with or without seconds)
    ("%Y-%m-%d", timedelta(days=1)),
    ("%Y-%m-%dT%H:%M", timedelta(minutes=1)),
    ("%Y-%m-%dT%H:%M:%S", timedelta(seconds=1)),
)


def parse_moment(text: str, *, end: bool = False) -> int:
    """A date or date and time (UTC) as epoch milliseconds: the first millisecond of that day
    or minute, or with ``end`` its last one, so "until 2024-05-01" includes that whole day."""
    value = text.strip()
    for fmt, period in MOMENT_FORMATS:
        try:
            moment = datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        start = int(moment.timestamp() * 1000)
        return start + int(period.total_seconds() * 1000) - 1 if end else start
    raise InvalidInput(f"{text!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)")


def read_filters(urn: str, since: str, until: str) -> tuple[dict[str, int | None], list[str]]:
    """The time window in milliseconds, and what is wrong with the filters, if anything."""
    errors: list[str] = []
    window: dict[str, int | None] = {"since": None, "until": None}
    for name, text in (("since", since), ("until", until)):
        if text.strip():
            try:
                window[name] = parse_moment(text, end=name == "until")
            except InvalidInput as exc:
                errors.append(f"{name.capitalize()}: {exc.message}")
    start, stop = window["since"], window["until"]
    if start is not None and stop is not None and start > stop:
        errors.append("Since must be before until.")
    if urn.strip():
        try:
            parse_urn(urn.strip())
        except InvalidInput as exc:
            errors.append(f"Entity: {exc.message}")
    return window, errors


def page_link(filters: dict[str, str], before: int | None = None) -> str:
    pairs = [(k, v) for k, v in filters.items() if v and k != "entity"]
    if before is not None:
        pairs.append(("before", str(before)))
    return "/activity" + ("?" + urlencode(pairs) if pairs else "")


def pick_entity(
    store: Store, filters: dict[str, str], readable: frozenset[int] | None
) -> str | None:
    """The URN the entity box names (a URN typed in, or a name picked from its suggestions),
    set into ``filters``; what is wrong when it names none or several."""
    text = filters["entity"]
    if filters["urn"] or not text:
        return None
    if text.startswith("urn:"):
        filters["urn"] = text
        return None
    found = suggestions.resolve_entity(store, text=text, readable=readable)
    if found is None:
        return f"Entity: pick one from the suggestions; {text!r} names no one entity."
    filters["urn"] = found.urn
    return None


def activity_context(
    store: Store, filters: dict[str, str], before: int | None, readable: frozenset[int] | None
) -> dict[str, Any]:
    """A page of the change log as the filters ask, with links to the older and newest pages;
    filters that cannot be read are reported and show nothing."""
    picked = pick_entity(store, filters, readable)
    window, errors = read_filters(filters["urn"], filters["since"], filters["until"])
    errors += [picked] if picked else []
    found = changes.LabelledChanges([], {})
    if not errors:
        found = changes.labelled_changes(
            store,
            urn=filters["urn"] or None,
            actor=filters["actor"] or None,
            since=window["since"],
            until=window["until"],
            before_id=before,
            limit=PAGE_SIZE + 1,
            values=True,
            readable=readable,
        )
    more = len(found.changes) > PAGE_SIZE
    if filters["urn"] and not errors and not filters["entity"]:
        filters["entity"] = entities.entity_labels(store, urns=[filters["urn"]])[filters["urn"]]
    return {
        "nav": "activity",
        "filters": filters,
        "errors": errors,
        "rows": change_rows(found.changes[:PAGE_SIZE], found.values),
        "labels": found.labels,
        "older": page_link(filters, found.changes[PAGE_SIZE - 1].id) if more else None,
        "newest": page_link(filters) if before is not None else None,
        "filtered": any(filters.values()),
        "without_actor": page_link({**filters, "actor": ""}),
    }


@router.get("/activity", response_class=HTMLResponse)
@allow(Level.SIGNED_IN)
def activity(
    request: Request,
    store: StoreDep,
    readable: Readable,
    urn: Annotated[str, Query(max_length=4096)] = "",
    entity: Annotated[str, Query(max_length=4096)] = "",
    actor: Annotated[str, Query(max_length=250)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    before: Serial | None = None,
) -> HTMLResponse:
    """The change log, newest first, filtered by entity (a URN, or a name picked from the
    suggestions), actor and time; "Older" pages on."""
    filters = {
        "urn": urn.strip(),
        "entity": entity.strip(),
        "actor": actor.strip(),
        "since": since,
        "until": until,
    }
    context = activity_context(store, filters, before, readable)
    return render(request, "activity.html", context, status=400 if context["errors"] else 200)


@router.get("/activity/entities", response_class=HTMLResponse)
@allow(Level.SIGNED_IN)
def entity_suggestions(
    request: Request,
    store: StoreDep,
    readable: Readable,
    entity: Annotated[str, Query(max_length=250)] = "",
) -> HTMLResponse:
    """The entity box's suggestions for what has been typed: <option>s for its <datalist>."""
    found = suggestions.suggest_entities(store, text=entity, readable=readable)
    return render(request, "_entity_options.html", {"suggestions": found})


def pick(versions: list[AspectVersion], number: int | None, what: str) -> AspectVersion | None:
    if number is None:
        return None
    for v in versions:
        if v.version == number:
            return v
    raise NotFound(f"there is no version {number} of {what}; it has 1 to {versions[-1].version}")


def diff_context(
    versions: list[AspectVersion], version: int | None, against: int | None
) -> dict[str, Any]:
    """The two versions compared (``against`` defaults to the one before ``version``, which
    defaults to the latest), their line diff and the keys that changed."""
    what = "this aspect"
    new = pick(versions, version, what) or versions[-1]
    default_old = new.version - 1 if new.version > 1 else None
    old = pick(versions, against if against is not None else default_old, what)
    return {
        "new": new,
        "old": old,
        "lines": line_diff(readable(old.value) if old else None, readable(new.value)),
        "summary": [str(c) for c in changed_keys(readable(old.value), readable(new.value))]
        if old
        else [],
    }


def history_context(
    store: Store, urn: str, aspect: str, version: int | None, against: int | None
) -> dict[str, Any]:
    versions = entities.get_aspect_history(store, urn=urn, aspect=aspect)
    return {
        "nav": "activity",
        "urn": urn,
        "aspect": aspect,
        "type": parse_urn(urn).type,
        "label": entities.entity_labels(store, urns=[urn])[urn],
        "versions": list(reversed(versions)),
        **diff_context(versions, version, against),
    }


@router.get("/history", response_class=HTMLResponse)
@allow(Level.READ, on=urn_query())
def history(
    request: Request,
    store: StoreDep,
    urn: Annotated[str, Query(max_length=4096)],
    aspect: Annotated[str, Query(max_length=100)],
    version: Serial | None = None,
    against: Serial | None = None,
) -> HTMLResponse:
    """Every version of one aspect of an entity, and the diff between two of them."""
    context = history_context(store, urn, aspect, version, against)
    return render(request, "history.html", context)
