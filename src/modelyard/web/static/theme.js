// Applied before first paint so a dark-theme user never sees a light flash.
(function () {
  var saved = null;
  try { saved = localStorage.getItem("modelyard-theme"); } catch (e) { /* private mode */ }
  if (saved === "light" || saved === "dark") {
    document.documentElement.setAttribute("data-theme", saved);
  }
})();
