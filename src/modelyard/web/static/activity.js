// Activity filters: picking a suggested entity filters by its URN at once; typing anything
// else forgets the URN picked before, so the box and the filter never disagree.
(function () {
  "use strict";

  function init() {
    var form = document.getElementById("activity-filters");
    if (!form) { return; }
    var box = form.querySelector("input[name=entity]");
    var urn = form.querySelector("input[name=urn]");
    var list = document.getElementById(box.getAttribute("list"));
    var shown = box.value;
    box.addEventListener("input", function () {
      var picked = null;
      list.querySelectorAll("option").forEach(function (o) {
        if (o.value === box.value) { picked = o; }
      });
      if (picked) {
        urn.value = picked.dataset.urn;
        form.requestSubmit();
      } else if (box.value !== shown) {
        urn.value = "";
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
