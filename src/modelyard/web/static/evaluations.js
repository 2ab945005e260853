// Evaluation pages: a live control (such as the binary analyzer's threshold slider and its
// number box) asks its endpoint (an analyzer's side-table query, e.g. every model's exact
// confusion matrix at the chosen threshold), then updates the cells named in the answer in
// place and moves the markers of the charts that follow it. Everything else that follows the
// threshold names the query whose answer carries it (data-query, data-live-eval, and
// data-live for a value or data-live-chart for a chart's y values): metrics at the
// threshold, fairness reports. The chosen threshold is kept in the address (?threshold=), so a link shows the
// page as seen. The evaluations list enables "compare" once two are ticked. Plain JS, no
// build step; charts are drawn by modelyard.js.
(function () {
  "use strict";

  var DEBOUNCE_MS = 60;
  var QUERIES = "/charts/evaluations/";

  // The same text the server's `number` filter writes: whole numbers with thousands
  // separators, others to 4 significant digits.
  function formatNumber(v) {
    if (v === null || v === undefined) { return null; }
    if (Number.isInteger(v) && Math.abs(v) < 1e15) { return v.toLocaleString("en-US"); }
    return String(Number(v.toPrecision(4)));
  }

  function setCell(cell, v) {
    var text = formatNumber(v);
    if (text === null) {
      cell.removeAttribute("data-value");
      cell.innerHTML = '<span class="muted">—</span>';
    } else {
      cell.setAttribute("data-value", String(v));
      cell.textContent = text;
    }
  }

  function updateTables(control, byId) {
    control.querySelectorAll("[data-eval]").forEach(function (scope) {
      var p = byId[scope.dataset.eval];
      if (!p) { return; }
      scope.querySelectorAll("[data-cell]").forEach(function (cell) {
        if (Object.prototype.hasOwnProperty.call(p, cell.dataset.cell)) {
          setCell(cell, p[cell.dataset.cell]);
        }
      });
    });
  }

  function plotOf(wrapper) {
    var el = wrapper.querySelector(".chart-plot");
    return el && el.data && window.Plotly ? el : null;
  }

  // One restyle per chart moves every model's marker: the marker trace holds one point per
  // model, in the order of the control's evaluation ids.
  function moveMarkers(ids, byId, t) {
    document.querySelectorAll("[data-marker-chart]").forEach(function (wrapper) {
      var el = plotOf(wrapper);
      if (!el) { return; }
      var x = wrapper.dataset.markerX, y = wrapper.dataset.markerY;
      var xs = ids.map(function (id) { return byId[id] ? byId[id][x] : null; });
      var ys = ids.map(function (id) { return byId[id] ? byId[id][y] : null; });
      var name = "chosen threshold " + formatNumber(t);
      window.Plotly.restyle(el, { x: [xs], y: [ys], name: name },
        [Number(wrapper.dataset.markerTrace)]);
    });
    document.querySelectorAll("[data-threshold-line]").forEach(function (wrapper) {
      var el = plotOf(wrapper);
      if (!el) { return; }
      var update = { "shapes[0].x0": t, "shapes[0].x1": t };
      if (el.layout.annotations && el.layout.annotations.length) {
        update["annotations[0].x"] = t;
        update["annotations[0].text"] = "threshold " + formatNumber(t);
      }
      window.Plotly.relayout(el, update);
    });
  }

  function queryUrl(endpoint, ids, t) {
    var query = ids.map(function (id) { return "e=" + encodeURIComponent(id); });
    query.push("t=" + encodeURIComponent(String(t)));
    return endpoint + "?" + query.join("&");
  }

  // A value that follows the threshold: an attribute (data-live-attr names it), text, or a
  // number written as the server writes it.
  function setLive(el, v) {
    if (el.dataset.liveAttr) {
      el.setAttribute(el.dataset.liveAttr, v === null || v === undefined ? "" : String(v));
    } else if (typeof v === "string") {
      el.setAttribute("data-value", v);
      el.textContent = v;
    } else {
      setCell(el, v);
    }
  }

  function applyAnswer(elements, body) {
    var byId = {};
    body.evaluations.forEach(function (p) { byId[p.id] = p; });
    elements.forEach(function (el) {
      var item = byId[el.dataset.liveEval];
      if (!item) { return; }
      if (el.hasAttribute("data-live-chart")) {
        var ys = (item.charts || {})[el.dataset.liveChart], plot = plotOf(el);
        if (ys && plot) {
          window.Plotly.restyle(plot, { y: ys }, ys.map(function (_, i) { return i; }));
        }
        return;
      }
      var cells = item.cells || item;
      if (Object.prototype.hasOwnProperty.call(cells, el.dataset.live)) {
        setLive(el, cells[el.dataset.live]);
      }
    });
    markBest();
  }

  // A comparison's rows of metrics that follow the threshold: the best value marked anew
  // (as the server marks it: only where the values differ and a direction is declared).
  function markBest() {
    document.querySelectorAll("tr[data-direction]").forEach(function (row) {
      var way = row.dataset.direction;
      var cells = Array.prototype.slice.call(row.querySelectorAll("td[data-live]"));
      if (cells.length < 2 || way === "none") { return; }
      var values = cells.map(function (c) {
        return c.hasAttribute("data-value") ? Number(c.dataset.value) : null;
      });
      var present = values.filter(function (v) { return v !== null; });
      var distinct = present.filter(function (v, i) { return present.indexOf(v) === i; });
      var pick = way === "higher" ? Math.max : Math.min;
      var best = distinct.length > 1 ? pick.apply(null, present) : null;
      cells.forEach(function (c, i) {
        var isBest = best !== null && values[i] === best;
        c.classList.toggle("better", isBest);
        if (isBest) { c.setAttribute("data-best", ""); } else { c.removeAttribute("data-best"); }
      });
    });
  }

  // Every query named by something on the page that follows the threshold: asked once for all
  // its evaluations (the control's own answer reused), its answer applied in place.
  function refreshFollowers(t, known) {
    var byQuery = {};
    document.querySelectorAll("[data-query][data-live-eval]").forEach(function (el) {
      (byQuery[el.dataset.query] = byQuery[el.dataset.query] || []).push(el);
    });
    Object.keys(byQuery).forEach(function (name) {
      var elements = byQuery[name], endpoint = QUERIES + name;
      if (known && known.endpoint === endpoint) { applyAnswer(elements, known.body); return; }
      var ids = [];
      elements.forEach(function (el) {
        if (ids.indexOf(el.dataset.liveEval) < 0) { ids.push(el.dataset.liveEval); }
      });
      var tokens = refreshFollowers.tokens = refreshFollowers.tokens || {};
      var token = (tokens[name] || 0) + 1;
      tokens[name] = token;
      fetch(queryUrl(endpoint, ids, t), { headers: { Accept: "application/json" } })
        .then(function (r) {
          if (!r.ok) { return errorMessage(r).then(function (m) { throw new Error(m); }); }
          return r.json();
        })
        .then(function (body) { if (token === tokens[name]) { applyAnswer(elements, body); } })
        .catch(function (err) { console.warn("could not update " + name + ": " + err.message); });
    });
  }

  // The chosen threshold in the address, so that the page can be shared as it is seen.
  function rememberThreshold(t) {
    if (!window.history || !window.history.replaceState || !window.URL) { return; }
    var url = new URL(window.location.href);
    url.searchParams.set("threshold", String(t));
    window.history.replaceState(window.history.state, "", url.toString());
  }

  function showNote(control, text, isError) {
    var note = control.querySelector("[data-threshold-note]");
    if (!note) { return; }
    note.textContent = text || "";
    note.classList.toggle("is-error", Boolean(isError));
  }

  function errorMessage(response) {
    return response.json().then(
      function (body) { return (body.error || {}).message || response.statusText; },
      function () { return response.statusText; }
    );
  }

  function fetchPoints(control, ids, t) {
    var token = (control._token || 0) + 1;
    control._token = token;
    if (control._abort) { control._abort.abort(); }
    control._abort = "AbortController" in window ? new AbortController() : null;
    var url = queryUrl(control.dataset.endpoint, ids, t);
    control.setAttribute("aria-busy", "true");
    return fetch(url, {
      headers: { Accept: "application/json" },
      signal: control._abort ? control._abort.signal : undefined,
    }).then(function (response) {
      if (!response.ok) { return errorMessage(response).then(function (m) { throw new Error(m); }); }
      return response.json();
    }).then(function (body) {
      if (token !== control._token) { return; }  // a newer threshold is on its way
      var byId = {};
      body.evaluations.forEach(function (p) { byId[p.id] = p; });
      updateTables(control, byId);
      moveMarkers(ids, byId, body.threshold);
      refreshFollowers(body.threshold, { endpoint: control.dataset.endpoint, body: body });
      rememberThreshold(body.threshold);
      control.dataset.threshold = String(body.threshold);
      control.removeAttribute("aria-busy");
      control.dispatchEvent(new CustomEvent("modelyard:threshold", { bubbles: true, detail: body }));
    }).catch(function (err) {
      if (err.name === "AbortError" || token !== control._token) { return; }
      control.removeAttribute("aria-busy");
      showNote(control, "Could not update: " + err.message, true);
    });
  }

  // The value to use for what was typed: clamped into the scores' range, with a note saying so.
  function clamp(control, raw) {
    var lo = Number(control.dataset.min), hi = Number(control.dataset.max);
    var t = Number(raw);
    if (raw === "" || !isFinite(t)) { return { t: null, note: "Enter a number between " + lo + " and " + hi + "." }; }
    if (t < lo) { return { t: lo, note: raw + " is below the lowest score; using " + lo + "." }; }
    if (t > hi) { return { t: hi, note: raw + " is above the highest score; using " + hi + "." }; }
    return { t: t, note: "" };
  }

  function initControl(control) {
    if (control._ready) { return; }
    control._ready = true;
    var range = control.querySelector("[data-threshold-range]");
    var box = control.querySelector("[data-threshold-number]");
    var ids = control.dataset.evaluations.split(",").filter(Boolean);
    var timer = null;

    function schedule(t) {
      clearTimeout(timer);
      timer = setTimeout(function () { fetchPoints(control, ids, t); }, DEBOUNCE_MS);
    }
    function fromBox(rewrite) {
      var found = clamp(control, box.value.trim());
      showNote(control, found.note, found.t === null);
      if (found.t === null) { return; }
      range.value = String(found.t);
      if (rewrite && found.note) { box.value = String(found.t); }
      schedule(found.t);
    }
    range.addEventListener("input", function () {
      box.value = range.value;
      showNote(control, "");
      schedule(Number(range.value));
    });
    box.addEventListener("input", function () { fromBox(false); });
    box.addEventListener("change", function () { fromBox(true); });
    box.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") { ev.preventDefault(); fromBox(true); }
    });
    // Anything drawn at another threshold than the control's (a report that starts at its
    // evaluation's own threshold) catches up with it.
    var t = Number(control.dataset.threshold);
    var behind = Array.prototype.some.call(
      document.querySelectorAll("[data-live='threshold'][data-query]"),
      function (el) { return Number(el.dataset.value) !== t; });
    if (behind) { refreshFollowers(t, null); }
  }

  // A run's evaluations list: "compare selected" is live once two or more are ticked.
  function initCompareForm(form) {
    if (form._ready) { return; }
    form._ready = true;
    var button = form.querySelector("[data-compare-button]");
    var count = form.querySelector("[data-selected-count]");
    function update() {
      var n = form.querySelectorAll("input[name=e]:checked").length;
      if (button) { button.disabled = n < 2 || n > 8; }
      if (count) { count.textContent = n ? n + " selected" + (n > 8 ? " (at most 8)" : "") : ""; }
    }
    form.addEventListener("change", update);
    update();
  }

  function init(root) {
    root.querySelectorAll("[data-threshold-control]").forEach(initControl);
    root.querySelectorAll("form[data-evaluation-compare]").forEach(initCompareForm);
  }

  document.addEventListener("DOMContentLoaded", function () {
    init(document);
    document.body.addEventListener("htmx:afterSettle", function (ev) { init(ev.target); });
  });
  window.modelyardEvaluations = { formatNumber: formatNumber, clamp: clamp };
})();
