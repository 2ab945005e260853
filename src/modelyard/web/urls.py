"""Where each kind of entity lives in the portal."""

from __future__ import annotations

from urllib.parse import quote

from modelyard.metadata.urn import parse_urn


def entity_page(urn: str) -> str:
    """The portal page that shows an entity best."""
    p = parse_urn(urn)
    if p.type == "run":
        return f"/runs/{p.parts[0]}"
    if p.type == "step" and len(p.parts) > 1:
        return f"/runs/{p.parts[0]}#step-{quote(p.parts[1], safe='')}"
    if p.type == "artifact" and len(p.parts) > 1:
        return f"/runs/{p.parts[0]}/artifacts/{quote(p.parts[1], safe='/')}"
    if p.type == "model_version" and len(p.parts) > 1:
        return f"/models/{quote(p.parts[0], safe='')}/versions/{p.parts[1]}"
    if p.type == "model":
        return f"/models/{quote(p.parts[0], safe='')}"
    if p.type == "evaluation":
        return f"/evaluations/{p.id}"
    if p.type == "project":
        return f"/projects/{p.id}"
    return f"/entities/{quote(urn, safe='')}"
