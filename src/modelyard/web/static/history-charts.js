// History charts (a metric over steps or time): smoothing by an exponential moving average,
// the raw line kept faint behind it, and a log y axis. One choice for every history chart on
// the page, kept in the page's URL (?smooth=0.6&logy=1) so a reload or a shared link shows
// the same. Loaded after modelyard.js, whose draw() calls adjust() on every figure.
(function () {
  "use strict";
  var state = { smooth: 0, logy: false };

  function clampSmooth(text) {
    var value = parseFloat(text);
    return isFinite(value) ? Math.min(0.99, Math.max(0, value)) : 0;
  }

  function readUrl() {
    var query = new URLSearchParams(window.location.search);
    state.smooth = clampSmooth(query.get("smooth"));
    state.logy = query.get("logy") === "1";
  }

  function writeUrl() {
    var url = new URL(window.location.href);
    if (state.smooth > 0) { url.searchParams.set("smooth", String(state.smooth)); } else { url.searchParams.delete("smooth"); }
    if (state.logy) { url.searchParams.set("logy", "1"); } else { url.searchParams.delete("logy"); }
    window.history.replaceState(window.history.state, "", url);
  }

  // s[0] = y[0]; s[i] = w * s[i-1] + (1 - w) * y[i], over the points as drawn. Points the
  // server left out (NaN, infinities) are gaps the average steps over.
  function ema(y, w) {
    var out = new Array(y.length), s = null;
    for (var i = 0; i < y.length; i++) {
      var v = y[i];
      if (typeof v !== "number" || !isFinite(v)) { out[i] = null; continue; }
      s = s === null ? v : w * s + (1 - w) * v;
      out[i] = s;
    }
    return out;
  }

  function isHistory(el) {
    return (el.dataset.chartSrc || "").indexOf("/charts/metric?") === 0;
  }

  function allPositive(data) {
    return data.every(function (trace) {
      return (trace.y || []).every(function (v) { return v === null || v > 0; });
    });
  }

  function smoothed(data, w) {
    var raw = data.map(function (trace) {
      var faint = Object.assign({}, trace, {
        opacity: 0.25, showlegend: false, hoverinfo: "skip", legendgroup: trace.name,
        mode: "lines", meta: "raw",
      });
      delete faint.hovertemplate;
      return faint;
    });
    var smooth = data.map(function (trace) {
      return Object.assign({}, trace, {
        y: ema(trace.y || [], w), mode: "lines", legendgroup: trace.name, meta: "smoothed",
        line: Object.assign({}, trace.line, { width: 2 }),
      });
    });
    return raw.concat(smooth);  // the smoothed lines on top
  }

  function adjust(el, figure) {
    if (!isHistory(el)) { return figure; }
    var data = figure.data || [];
    var layout = Object.assign({}, figure.layout);
    var meta = Object.assign({}, figure.meta);
    var canLog = allPositive(data);
    var log = state.logy && canLog;
    layout.yaxis = Object.assign({}, layout.yaxis, { type: log ? "log" : "linear" });
    // A new axis type starts from the whole range: a zoom in linear units means nothing on
    // a log axis.
    layout.uirevision = String(layout.uirevision || "") + (log ? "|log" : "");
    var notes = [];
    if (state.logy && !canLog) { notes.push("linear axis: a log scale needs every value above 0"); }
    if (state.smooth > 0) { notes.push("smoothed (EMA " + state.smooth.toFixed(2) + "), raw line faint"); }
    if (meta.note) { notes.push(meta.note); }
    meta.note = notes.join("; ");
    el.dataset.yScale = log ? "log" : "linear";
    return { data: state.smooth > 0 ? smoothed(data, state.smooth) : data, layout: layout, meta: meta };
  }

  var pending = false;
  function redrawAll() {
    if (pending) { return; }
    pending = true;
    window.requestAnimationFrame(function () {
      pending = false;
      document.querySelectorAll(".chart-plot[data-drawn]").forEach(function (el) {
        if (isHistory(el)) { window.modelyard.redraw(el); }
      });
    });
  }

  function initControls() {
    document.querySelectorAll("[data-chart-controls]").forEach(function (box) {
      var slider = box.querySelector("input[name=smooth]");
      var shown = box.querySelector("output");
      var log = box.querySelector("input[name=logy]");
      slider.value = String(state.smooth);
      shown.textContent = state.smooth.toFixed(2);
      log.checked = state.logy;
      slider.addEventListener("input", function () {
        state.smooth = clampSmooth(slider.value);
        shown.textContent = state.smooth.toFixed(2);
        writeUrl();
        redrawAll();
      });
      log.addEventListener("change", function () {
        state.logy = log.checked;
        writeUrl();
        redrawAll();
      });
    });
  }

  if (!window.modelyard) { return; }
  readUrl();
  window.modelyard.adjust(adjust);
  document.addEventListener("DOMContentLoaded", initControls);
})();
