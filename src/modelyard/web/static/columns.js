// The runs table remembers the columns chosen with "Apply", per project, in this browser.
// Loaded in the page head: an address without columns is replaced by one naming the
// remembered columns before the page paints. An address that names columns wins.
(function () {
  "use strict";
  var script = document.currentScript;
  var key = "modelyard-columns:" + script.dataset.project;

  function saved() {
    try {
      var cols = JSON.parse(localStorage.getItem(key) || "null");
      return Array.isArray(cols) ? cols.filter(function (c) { return typeof c === "string"; }) : [];
    } catch (e) { return []; }  // private mode, or a damaged entry
  }

  var params = new URLSearchParams(location.search);
  var cols = saved();
  if (!params.has("col") && !params.has("page") && cols.length) {
    cols.forEach(function (c) { params.append("col", c); });
    location.replace(location.pathname + "?" + params.toString() + location.hash);
    return;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("runs-query");
    if (!form) { return; }
    form.addEventListener("submit", function (event) {
      if (!event.submitter || !event.submitter.hasAttribute("data-apply-columns")) { return; }
      var chosen = Array.prototype.map.call(
        form.querySelectorAll("input[name=col]:checked"), function (box) { return box.value; });
      try {
        if (chosen.length) { localStorage.setItem(key, JSON.stringify(chosen)); }
        else { localStorage.removeItem(key); }
      } catch (e) { /* private mode: the address still carries the columns */ }
    });
    form.querySelectorAll("[data-default-columns]").forEach(function (link) {
      link.addEventListener("click", function () {
        try { localStorage.removeItem(key); } catch (e) { /* private mode */ }
      });
    });
  });
})();
