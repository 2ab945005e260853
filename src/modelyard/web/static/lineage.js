// Lineage graph: the columns spread over the panel's width (nodes widen, up to a point, so
// longer names show), and hovering (or focusing) a node highlights its edges and neighbours.
(function () {
  "use strict";

  var MAX_NODE_WIDTH = 320;
  var CHAR_WIDTH = 7.2; // about one character of the 13px label

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

  // The same cut as the server's: the middle goes, so extensions and version numbers stay.
  function cut(text, limit) {
    if (text.length <= limit) { return text; }
    var head = Math.floor((limit - 1) / 2);
    return text.slice(0, head) + "\u2026" + text.slice(text.length - (limit - 1 - head));
  }

  function shared(a, b) {
    var i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) { i += 1; }
    return i;
  }

  // The server's distinct_cuts: names a middle cut makes alike show where they differ, and
  // in full if that is not enough.
  function distinctCuts(names, limit) {
    var cuts = {}, alike = {};
    names.forEach(function (n) {
      cuts[n] = cut(n, limit);
      var group = alike[cuts[n]] = alike[cuts[n]] || [];
      if (group.indexOf(n) < 0) { group.push(n); }
    });
    Object.keys(alike).forEach(function (key) {
      var group = alike[key];
      if (group.length < 2) { return; }
      group.forEach(function (n) {
        var at = Math.max.apply(null, group.filter(function (o) { return o !== n; })
          .map(function (o) { return shared(n, o); }));
        var start = Math.max(0, Math.min(at - Math.floor((limit - 2) / 3), n.length - (limit - 2)));
        var end = Math.min(n.length, start + limit - 2);
        cuts[n] = (start ? "\u2026" : "") + n.slice(start, end) + (end < n.length ? "\u2026" : "");
      });
      var seen = {};
      group.forEach(function (n) { seen[cuts[n]] = true; });
      if (Object.keys(seen).length < group.length) {
        group.forEach(function (n) { cuts[n] = n; });
      }
    });
    return cuts;
  }

  function curve(x1, y1, x2, y2) {
    var bend = Math.max(30, (x2 - x1) / 2);
    return "M" + x1.toFixed(1) + "," + y1.toFixed(1) + " C" + (x1 + bend).toFixed(1) + "," +
      y1.toFixed(1) + " " + (x2 - bend).toFixed(1) + "," + y2.toFixed(1) + " " +
      x2.toFixed(1) + "," + y2.toFixed(1);
  }

  // Lay the columns out over the width the panel has; never narrower than the server's layout
  // (a wider graph scrolls inside its panel).
  function spread(graph) {
    var svg = graph.querySelector("svg");
    var nodes = graph.querySelectorAll(".node");
    var baseWidth = Number(svg.dataset.nodeWidth);
    var height = Number(svg.dataset.nodeHeight);
    var chars = Number(svg.dataset.labelChars);
    var columns = 0;
    nodes.forEach(function (n) { columns = Math.max(columns, Number(n.dataset.column) + 1); });
    var natural = Number(svg.getAttribute("width"));
    if (!svg.dataset.naturalWidth) { svg.dataset.naturalWidth = String(natural); }
    natural = Number(svg.dataset.naturalWidth);
    var minGap = columns > 1 ? (natural - 20 - columns * baseWidth) / (columns - 1) : 0;
    var room = graph.clientWidth;
    var width = Math.max(natural, room);
    var nodeWidth = Math.min(MAX_NODE_WIDTH, Math.max(baseWidth, (width - 20 - (columns - 1) * minGap) / columns));
    var gap = columns > 1 ? (width - 20 - columns * nodeWidth) / (columns - 1) : 0;
    var offset = columns > 1 ? 0 : (width - 20 - nodeWidth) / 2;
    var at = {};
    var limit = chars + Math.floor((nodeWidth - baseWidth) / CHAR_WIDTH);
    var names = distinctCuts(Array.prototype.map.call(nodes, function (n) {
      return n.querySelector("text.name[data-full]").dataset.full;
    }), limit);
    nodes.forEach(function (n) {
      var x = 10 + offset + Number(n.dataset.column) * (nodeWidth + gap);
      var y = Number(n.dataset.y);
      at[n.dataset.urn] = { x: x, y: y };
      n.setAttribute("transform", "translate(" + x.toFixed(1) + "," + y + ")");
      n.querySelector("rect.box").setAttribute("width", nodeWidth.toFixed(1));
      var centre = n.querySelector(".centre text");
      if (centre) { centre.setAttribute("x", (nodeWidth - 10).toFixed(1)); }
      var sub = n.querySelector("text.sub[data-full]");
      sub.textContent = cut(sub.dataset.full, limit + 4);
      var name = n.querySelector("text.name[data-full]");
      name.textContent = names[name.dataset.full];
    });
    graph.querySelectorAll(".edge-group").forEach(function (g) {
      var a = at[g.dataset.from], b = at[g.dataset.to];
      if (!a || !b) { return; }
      var x1 = a.x + nodeWidth, y1 = a.y + height / 2, x2 = b.x, y2 = b.y + height / 2;
      var d = curve(x1, y1, x2, y2);
      g.querySelectorAll("path").forEach(function (p) { p.setAttribute("d", d); });
      var label = g.querySelector(".edge-label");
      if (label) { // three quarters along the curve, as the server places it
        label.setAttribute("x", (0.297 * x1 + 0.703 * x2).toFixed(1));
        label.setAttribute("y", (0.156 * y1 + 0.844 * y2 - 4).toFixed(1));
      }
    });
    svg.setAttribute("width", width.toFixed(0));
    svg.setAttribute("viewBox", "0 0 " + width.toFixed(0) + " " + svg.getAttribute("height"));
  }

  function init() {
    var graph = document.getElementById("lineage-graph");
    if (!graph) { return; }
    spread(graph);
    var pending = null;
    window.addEventListener("resize", function () {
      if (pending) { cancelAnimationFrame(pending); }
      pending = requestAnimationFrame(function () { pending = null; spread(graph); });
    });
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
