// Lineage graph: hovering (or focusing) a node highlights its edges and neighbours.
(function () {
  "use strict";

  function highlight(graph, urn, on) {
    var near = {};
    graph.querySelectorAll(".edge-group").forEach(function (g) {
      var hit = g.dataset.from === urn || g.dataset.to === urn;
      var lit = on && hit;
      g.classList.toggle("lit", lit);
      var path = g.querySelector(".edge");
      path.style.stroke = lit ? "var(--accent)" : "";
      path.style.strokeWidth = lit ? "2.6" : "";
      path.style.opacity = lit ? "1" : "";
      if (lit) { near[g.dataset.from] = true; near[g.dataset.to] = true; }
    });
    graph.querySelectorAll(".node").forEach(function (node) {
      var box = node.querySelector("rect.box");
      var lit = on && near[node.dataset.urn] && node.dataset.urn !== urn;
      node.classList.toggle("lit", !!lit);
      box.style.stroke = lit ? "var(--accent)" : "";
    });
  }

  function init() {
    var graph = document.getElementById("lineage-graph");
    if (!graph) { return; }
    graph.querySelectorAll(".node").forEach(function (node) {
      var urn = node.dataset.urn;
      ["mouseenter", "focusin"].forEach(function (ev) {
        node.addEventListener(ev, function () { highlight(graph, urn, true); });
      });
      ["mouseleave", "focusout"].forEach(function (ev) {
        node.addEventListener(ev, function () { highlight(graph, urn, false); });
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
