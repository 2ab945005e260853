// modelyard portal behaviour: theme switch, charts (embedded or fetched, refined on zoom),
// run selection for comparison. Plain JS, no build step.
(function () {
  "use strict";

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function themed(layout) {
    var text = cssVar("--text"), line = cssVar("--line"), muted = cssVar("--muted");
    var base = {
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: text, size: 12 }, margin: { l: 52, r: 12, t: 12, b: 38 },
      // Above the plot, where it cannot cover an axis title or rotated tick labels.
      legend: { orientation: "h", x: 0, xanchor: "left", y: 1.02, yanchor: "bottom" },
      hovermode: "x unified",
    };
    var out = Object.assign(base, layout || {});
    // Every axis (a second y axis too) makes room for its tick labels and title.
    var axes = Object.keys(out).filter(function (k) { return /^[xy]axis\d*$/.test(k); });
    ["xaxis", "yaxis"].concat(axes).forEach(function (ax) {
      out[ax] = Object.assign({ gridcolor: line, zerolinecolor: line, linecolor: muted, automargin: true },
        out[ax] || {});
    });
    return out;
  }

  var CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

  // Category labels on the x axis (evaluation names, group values) are shortened on the
  // axis, whole in the hover, so a 200-character name cannot squash the plot to a sliver.
  var LABEL_MAX = 24;
  function shortLabels(data, layout) {
    var cats = [];
    data.forEach(function (trace) {
      if (trace.xaxis && trace.xaxis !== "x") { return; }
      (Array.isArray(trace.x) ? trace.x : []).forEach(function (v) {
        if (typeof v === "string" && cats.indexOf(v) < 0) { cats.push(v); }
      });
    });
    var long = cats.some(function (c) { return c.length > LABEL_MAX; });
    var axis = layout.xaxis || {};
    if (!long || axis.tickvals) { return layout; }
    var ticktext = cats.map(function (c) {
      return c.length > LABEL_MAX ? c.slice(0, LABEL_MAX - 1) + "…" : c;
    });
    return Object.assign({}, layout, {
      xaxis: Object.assign({}, axis, { tickmode: "array", tickvals: cats, ticktext: ticktext }),
    });
  }

  // Scripts of a page may adjust a figure before it is drawn (history charts: smoothing and a
  // log axis). The figure as it came is kept on the element, so a change of mind redraws
  // from it rather than from an adjusted copy.
  var adjusters = [];

  // What the figure says about itself ("1,500 of 90,000 points shown"), under the plot
  // rather than on it, where it could cover a legend or an axis title.
  function showNote(el, text) {
    var note = el.parentNode && el.parentNode.querySelector(".chart-note");
    if (!text) {
      if (note) { note.remove(); }
      return;
    }
    if (!note) {
      note = document.createElement("p");
      note.className = "chart-note muted small";
      el.insertAdjacentElement("afterend", note);
    }
    note.textContent = text;
  }

  function draw(el, figure) {
    if (!window.Plotly) { return; }
    if (!el.dataset.drawn) { el.textContent = ""; }  // the "loading" note, first time only
    el._figure = figure;
    adjusters.forEach(function (adjust) { figure = adjust(el, figure) || figure; });
    var data = figure.data || [];
    window.Plotly.react(el, data, themed(shortLabels(data, figure.layout || {})), CONFIG);
    showNote(el, (figure.meta || {}).note || "");
    el.dataset.drawn = "1";
  }

  function redraw(el) {
    if (el._figure) { draw(el, el._figure); }
  }

  // A fetched chart asks the server again for the visible range when the user zooms, so a
  // long history shows every detail up close while only a few thousand points travel.
  function fetchFigure(el, range) {
    var url = el.dataset.chartSrc;
    if (range) {
      url += (url.indexOf("?") < 0 ? "?" : "&") + "x0=" + encodeURIComponent(range[0]) +
        "&x1=" + encodeURIComponent(range[1]);
    }
    var token = (el._fetchToken || 0) + 1;
    el._fetchToken = token;
    return fetch(url, { headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) {
          return r.json().then(function (b) { throw new Error((b.error || {}).message || r.statusText); });
        }
        return r.json();
      })
      .then(function (figure) {
        if (token !== el._fetchToken) { return; }
        // The zoomed range stays as the user set it: figures carry a constant uirevision,
        // so Plotly keeps user-made axis ranges across redraws (and a double-click still
        // resets to the whole history).
        draw(el, figure);
        el.dataset.loaded = "1";
        el.dispatchEvent(new CustomEvent("modelyard:chart-loaded", { bubbles: true }));
      })
      .catch(function (err) {
        el.innerHTML = "";
        var p = document.createElement("p");
        p.className = "notice notice-error";
        p.textContent = "This chart could not be loaded: " + err.message;
        el.appendChild(p);
      });
  }

  function watchZoom(el) {
    if (el._zoomWatched) { return; }
    el._zoomWatched = true;
    el.on("plotly_relayout", function (ev) {
      if (ev["xaxis.range[0]"] !== undefined) {
        fetchFigure(el, [ev["xaxis.range[0]"], ev["xaxis.range[1]"]]);
      } else if (ev["xaxis.autorange"]) {
        fetchFigure(el, null);
      }
    });
  }

  var observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting) {
        observer.unobserve(entry.target);
        fetchFigure(entry.target, null).then(function () {
          if (entry.target.on) { watchZoom(entry.target); }
        });
      }
    });
  }, { rootMargin: "200px" }) : null;

  function initCharts(root) {
    root.querySelectorAll("script[data-chart-for]").forEach(function (script) {
      var el = document.getElementById(script.dataset.chartFor);
      if (el && !el.dataset.drawn) { draw(el, JSON.parse(script.textContent)); }
    });
    root.querySelectorAll("[data-chart-src]").forEach(function (el) {
      if (el.dataset.observed) { return; }
      el.dataset.observed = "1";
      if (observer) { observer.observe(el); } else { fetchFigure(el, null); }
    });
  }

  function redrawAll() {
    document.querySelectorAll(".chart-plot[data-drawn]").forEach(function (el) {
      if (window.Plotly && el.layout) {
        window.Plotly.relayout(el, themed({ xaxis: el.layout.xaxis, yaxis: el.layout.yaxis }));
      }
    });
  }

  function initThemeToggle() {
    document.querySelectorAll("[data-theme-toggle]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var dark = cssVar("color-scheme") === "dark";
        var next = dark ? "light" : "dark";
        document.documentElement.setAttribute("data-theme", next);
        try { localStorage.setItem("modelyard-theme", next); } catch (e) { /* private mode */ }
        redrawAll();
      });
    });
  }

  // Runs table: the compare button is live once two or more runs are ticked.
  function initSelection(root) {
    root.querySelectorAll("form[data-compare]").forEach(function (form) {
      var button = form.querySelector("[data-compare-button]");
      var count = form.querySelector("[data-selected-count]");
      function update() {
        var n = form.querySelectorAll("input[name=run]:checked").length;
        if (button) { button.disabled = n < 2; }
        if (count) { count.textContent = n ? n + " selected" : ""; }
      }
      var all = form.querySelector("[data-select-all]");
      if (all) {
        all.addEventListener("change", function () {
          form.querySelectorAll("input[name=run]").forEach(function (box) { box.checked = all.checked; });
          update();
        });
      }
      form.addEventListener("change", update);
      update();
    });
  }

  // "/" anywhere but in a text field goes to the search box, as on most sites with one.
  function initSearchKey() {
    document.addEventListener("keydown", function (ev) {
      if (ev.key !== "/" || ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
      var target = ev.target;
      if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) {
        return;
      }
      var box = document.querySelector(".global-search input[type=search]");
      if (!box) { return; }
      ev.preventDefault();
      box.focus();
      box.select();
    });
  }

  function init(root) {
    initCharts(root);
    initSelection(root);
  }

  document.addEventListener("DOMContentLoaded", function () {
    initThemeToggle();
    initSearchKey();
    init(document);
    document.body.addEventListener("htmx:afterSettle", function (ev) { init(ev.target); });
  });
  window.modelyard = {
    draw: draw,
    redraw: redraw,
    fetchFigure: fetchFigure,
    adjust: function (fn) { adjusters.push(fn); },
  };
})();
