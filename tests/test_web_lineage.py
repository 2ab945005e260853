"""The lineage and entity pages: what a user sees of a dataset → run → model chain."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from modelyard.metadata.urn import artifact_urn, dataset_urn, model_urn, model_version_urn, run_urn
from modelyard.services import entities
from tests.helpers import get_page, new_run

API = "/api/v1"
HOSTILE = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


# --- a small DOM over html.parser, enough to ask what a page shows


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    def text(self) -> str:
        return " ".join(
            " ".join((c if isinstance(c, str) else c.text()).split()) for c in self.children
        ).strip()

    def iter(self) -> Iterator[Element]:
        for child in self.children:
            if isinstance(child, Element):
                yield child
                yield from child.iter()

    def find_all(
        self, tag: str | None = None, cls: str | None = None, **attrs: str
    ) -> list[Element]:
        return [
            e
            for e in self.iter()
            if (tag is None or e.tag == tag)
            and (cls is None or cls in e.attrs.get("class", "").split())
            and all(e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Element:
        found = self.find_all(tag, cls, **attrs)
        assert found, f"no <{tag} class={cls} {attrs}>"
        return found[0]

    def rows(self) -> list[list[str]]:
        """A table's body rows as cell texts."""
        return [[td.text() for td in tr.find_all("td")] for tr in self.find("tbody").find_all("tr")]


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(text: str) -> Element:
    builder = TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def page(api: httpx.Client, url: str, status: int = 200, **params: Any) -> Element:
    return parse_html(get_page(api, url, status, **params))


def assert_friendly_error(resp: httpx.Response, status: int, reason: str) -> None:
    """An HTML page with the status and the reason in words, never a stack trace."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("text/html")
    assert "Traceback" not in resp.text
    assert 'File "' not in resp.text
    assert reason in parse_html(resp.text).find("main").text()


def assert_escaped(resp: httpx.Response, *shown: str) -> None:
    """Hostile text is shown as text, and never becomes markup."""
    assert resp.status_code == 200, resp.text
    for text in HOSTILE:
        assert text not in resp.text
    doc = parse_html(resp.text)
    assert not [e for e in doc.find_all("img") if "onerror" in e.attrs]
    assert all(s.attrs.get("src") for s in doc.find_all("script")), "an inline script appeared"
    visible = doc.find("main").text()
    for text in shown:
        assert text in visible


# --- data through the JSON API


def inputs(api: httpx.Client, run_id: str, **body: Any) -> None:
    api.post(f"{API}/runs/{run_id}/inputs", json=body).raise_for_status()


def outputs(api: httpx.Client, run_id: str, **body: Any) -> None:
    api.post(f"{API}/runs/{run_id}/outputs", json=body).raise_for_status()


@dataclass
class Chain:
    """raw (dataset) → prep (run) → features (dataset) → train (run) → churn (model)"""

    prep: str
    train: str

    @property
    def urns(self) -> dict[str, str]:
        return {
            "raw": dataset_urn("raw"),
            "prep": run_urn(self.prep),
            "features": dataset_urn("features"),
            "train": run_urn(self.train),
            "churn": model_urn("churn"),
        }


@pytest.fixture
def chain(api: httpx.Client) -> Chain:
    prep = new_run(api, "lineage", name="prep")
    inputs(api, prep, datasets=[{"name": "raw", "uri": "s3://b/raw"}])
    outputs(api, prep, datasets=[{"name": "features"}])
    api.patch(f"{API}/runs/{prep}", json={"status": "finished"}).raise_for_status()
    train = new_run(api, "lineage", name="train")
    inputs(api, train, datasets=[{"name": "features"}])
    outputs(api, train, models=[{"name": "churn", "description": "gbm"}])
    return Chain(prep, train)


def graph_nodes(doc: Element) -> dict[str, Element]:
    """The SVG graph's nodes by URN."""
    return {g.attrs["data-urn"]: g for g in doc.find("svg").find_all("g", cls="node")}


def graph_edges(doc: Element) -> set[tuple[str, str, str]]:
    """The SVG graph's edges as (upstream, relationship type, downstream)."""
    return {
        (g.attrs["data-from"], g.attrs["data-type"], g.attrs["data-to"])
        for g in doc.find("svg").find_all("g", cls="edge-group")
    }


def edge_words(doc: Element) -> set[tuple[str, str, str]]:
    """The SVG graph's edges as (upstream, the words on the edge, downstream)."""
    return {
        (g.attrs["data-from"], g.find("text", cls="edge-label").text(), g.attrs["data-to"])
        for g in doc.find("svg").find_all("g", cls="edge-group")
    }


def api_lineage(api: httpx.Client, urn: str, up: int, down: int) -> dict[str, Any]:
    resp = api.get(f"{API}/lineage", params={"urn": urn, "upstream": up, "downstream": down})
    resp.raise_for_status()
    body: dict[str, Any] = resp.json()
    return body


def x_of(node: Element) -> float:
    return float(node.attrs["transform"].removeprefix("translate(").split(",")[0])


def test_lineage_of_a_run_shows_its_inputs_left_and_outputs_right(
    api: httpx.Client, chain: Chain
) -> None:
    u = chain.urns
    doc = page(api, "/lineage", urn=u["train"], up=1, down=1)
    nodes = graph_nodes(doc)
    assert set(nodes) == {u["features"], u["train"], u["churn"]}
    assert nodes[u["train"]].attrs["class"].split() == ["node", "root"]
    assert [n for n in nodes.values() if "root" in n.attrs["class"]] == [nodes[u["train"]]]
    assert x_of(nodes[u["features"]]) < x_of(nodes[u["train"]]) < x_of(nodes[u["churn"]])
    # each node shows its type and name, and links to its page
    shown = [t.text() for t in nodes[u["train"]].find("a").find_all("text")]
    assert shown == ["run", "train"]
    assert nodes[u["train"]].find("title").text() == f"run: train (root) {u['train']}"
    assert nodes[u["churn"]].find("a").attrs["href"] == "/models/churn"  # a model's own page
    assert nodes[u["train"]].find("a").attrs["href"] == f"/runs/{chain.train}"
    assert "model" in nodes[u["churn"]].text()
    assert "churn" in nodes[u["churn"]].text()
    assert graph_edges(doc) == {
        (u["features"], "Consumes", u["train"]),
        (u["train"], "Produces", u["churn"]),
    }
    assert edge_words(doc) == {
        (u["features"], "consumed by", u["train"]),
        (u["train"], "produced", u["churn"]),
    }
    table = doc.find("table", id="lineage-nodes").rows()
    assert {(r[0], r[1], r[2]) for r in table} == {
        ("dataset", "features", "1 upstream"),
        ("run", "train", "root"),
        ("model", "churn", "1 downstream"),
    }
    assert doc.find("table", id="lineage-edges").rows() == [
        ["features", "consumed by", "train"],
        ["train", "produced", "churn"],
    ]


@pytest.mark.parametrize(
    ("root", "up", "down", "expected"),
    [
        ("raw", 0, 1, {"raw", "prep"}),
        ("raw", 3, 2, {"raw", "prep", "features"}),
        ("raw", 0, 4, {"raw", "prep", "features", "train", "churn"}),
        ("churn", 2, 5, {"churn", "train", "features"}),
        ("features", 1, 1, {"prep", "features", "train"}),
        ("train", 0, 0, {"train"}),
    ],
)
def test_hop_limits_are_respected(
    api: httpx.Client, chain: Chain, root: str, up: int, down: int, expected: set[str]
) -> None:
    u = chain.urns
    doc = page(api, "/lineage", urn=u[root], up=up, down=down)
    listed = {
        tr.attrs["data-urn"]
        for tr in doc.find("table", id="lineage-nodes").find_all("tr")
        if "data-urn" in tr.attrs
    }
    assert listed == {u[name] for name in expected}
    api_graph = api_lineage(api, u[root], up, down)
    assert listed == {n["urn"] for n in api_graph["nodes"]}
    form = doc.find("form", id="lineage-hops")
    assert form.find("input", name="up").attrs["value"] == str(up)
    assert form.find("input", name="down").attrs["value"] == str(down)
    if expected == {root}:
        assert not doc.find_all("svg")
        assert "Nothing is recorded" in doc.find("main").text()
    else:
        assert set(graph_nodes(doc)) == listed
        api_edges = {(e["upstream"], e["type"], e["downstream"]) for e in api_graph["edges"]}
        assert graph_edges(doc) == api_edges


def test_centre_here_re_roots_the_graph_on_a_node(api: httpx.Client, chain: Chain) -> None:
    u = chain.urns
    doc = page(api, "/lineage", urn=u["train"], up=2, down=1)
    centre = graph_nodes(doc)[u["prep"]].find("a", cls="centre")
    assert centre.attrs["aria-label"] == "Centre the lineage on prep"
    link = urlsplit(centre.attrs["href"])
    assert link.path == "/lineage"
    assert parse_qs(link.query) == {"urn": [u["prep"]], "up": ["2"], "down": ["1"]}
    assert not graph_nodes(doc)[u["train"]].find_all("a", cls="centre")  # already the root

    recentred = page(api, centre.attrs["href"])
    nodes = graph_nodes(recentred)
    assert set(nodes) == {u["raw"], u["prep"], u["features"]}
    assert "root" in nodes[u["prep"]].attrs["class"].split()
    assert "root" not in nodes[u["features"]].attrs["class"].split()
    assert recentred.find("h1").text() == "Lineage of prep"


def test_hovering_a_node_is_wired_to_the_lineage_script(api: httpx.Client, chain: Chain) -> None:
    resp = api.get("/lineage", params={"urn": chain.urns["train"]})
    doc = parse_html(resp.text)
    scripts = [s.attrs["src"] for s in doc.find_all("script") if "lineage.js" in s.attrs["src"]]
    assert len(scripts) == 1
    assert "defer" in doc.find("script", src=scripts[0]).attrs
    js = api.get(scripts[0])
    assert js.status_code == 200
    assert "mouseenter" in js.text
    assert "edge-group" in js.text


def test_entity_page_shows_current_aspects_with_history_and_lineage_links(
    api: httpx.Client, chain: Chain
) -> None:
    u = chain.urns
    doc = page(api, f"/entities/{quote(u['raw'], safe='')}")
    assert doc.find("h1").text() == "raw"
    aspect = doc.find("section", id="aspect-dataset_properties")
    assert '"uri": "s3://b/raw"' in aspect.find("pre").text()
    history = aspect.find("a").attrs["href"]
    assert parse_qs(urlsplit(history).query) == {
        "urn": [u["raw"]],
        "aspect": ["dataset_properties"],
    }
    assert api.get(history).status_code == 200
    hrefs = [a.attrs["href"] for a in doc.find_all("a")]
    assert f"/lineage?urn={quote(u['raw'], safe='')}&up=3&down=3" in hrefs
    assert not [h for h in hrefs if h.startswith("/runs/")]  # datasets have only this page

    run_doc = page(api, f"/entities/{quote(u['train'], safe='')}")
    assert f"/runs/{chain.train}" in [a.attrs["href"] for a in run_doc.find_all("a")]
    lineage = run_doc.find("section", id="aspect-run_lineage").find("pre").text()
    assert u["features"] in lineage
    assert u["churn"] in lineage


def test_lineage_node_links_reach_the_entity_pages(api: httpx.Client, chain: Chain) -> None:
    doc = page(api, "/lineage", urn=chain.urns["features"])
    for urn, node in graph_nodes(doc).items():
        href = node.find("a").attrs["href"]
        if href.startswith("/entities/"):
            assert page(api, href).find("code").text() == urn


def test_bad_or_unknown_entities_give_friendly_pages(api: httpx.Client, chain: Chain) -> None:
    get = api.get
    assert_friendly_error(get("/lineage", params={"urn": "nonsense"}), 400, "not a modelyard URN")
    assert_friendly_error(
        get("/lineage", params={"urn": dataset_urn("nope")}), 404, f"{dataset_urn('nope')}"
    )
    assert_friendly_error(
        get("/lineage", params={"urn": chain.urns["raw"], "up": 21}), 400, "between 0 and 20"
    )
    assert_friendly_error(get("/lineage", params={"urn": chain.urns["raw"], "up": "x"}), 422, "up")
    assert_friendly_error(get("/lineage"), 422, "urn")
    ghost = quote(model_urn("ghost"), safe="")
    assert_friendly_error(get(f"/entities/{ghost}"), 404, "does not exist")
    assert_friendly_error(get("/entities/not-a-urn"), 400, "not a modelyard URN")


def test_hostile_names_are_escaped(api: httpx.Client) -> None:
    script, img = HOSTILE
    rid = new_run(api, "xss", name=script, tags={"note": img})
    inputs(api, rid, datasets=[{"name": img, "description": script}])
    outputs(api, rid, models=[{"name": script, "description": img}])
    run, data, model = run_urn(rid), dataset_urn(img), model_urn(script)
    for urn in (run, data, model):
        resp = api.get("/lineage", params={"urn": urn})
        assert_escaped(resp, script, img)
        doc = parse_html(resp.text)
        assert set(graph_nodes(doc)) == {run, data, model}
    for urn in (run, data, model):
        assert_escaped(api.get(f"/entities/{quote(urn, safe='')}"), script, img)


def test_labels_tell_files_of_one_run_apart_and_show_version_numbers(
    api: httpx.Client, app: FastAPI
) -> None:
    rid = new_run(api, "labels", name="gbm-3")
    urns = [
        artifact_urn(rid, "model.pkl"),
        artifact_urn(rid, "left/result.json"),
        artifact_urn(rid, "right/result.json"),
        model_version_urn("churn", 3),
    ]
    labels = entities.entity_labels(app.state.store, urns=urns)
    assert [labels[u] for u in urns] == [
        "gbm-3 › model.pkl",  # a file name alone when no other file of its run shares it
        "gbm-3 › left/result.json",
        "gbm-3 › right/result.json",
        "churn v3",
    ]
    alone = entities.entity_labels(app.state.store, urns=urns[1:2])
    assert alone == {urns[1]: "gbm-3 › result.json"}


def test_names_a_middle_cut_would_make_alike_show_where_they_differ() -> None:
    from modelyard.web.pages.lineage import LABEL_CHARS, distinct_cuts

    october = "evaluations/churn-2026-10-holdout/predictions.parquet"
    november = "evaluations/churn-2026-11-holdout/predictions.parquet"
    twins = ["x" * 40 + "a" + "x" * 40, "x" * 40 + "b" + "x" * 40]
    cut = distinct_cuts([october, november, "model.pkl", *twins])
    assert cut["model.pkl"] == "model.pkl"
    assert cut[october] != cut[november]
    assert "2026-10" in cut[october]
    assert "2026-11" in cut[november]
    assert all(len(cut[n]) <= LABEL_CHARS for n in (october, november, *twins))
    assert cut[twins[0]] != cut[twins[1]]
