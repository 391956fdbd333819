// The protocol wizard's preview: it is rendered again as the member types, and the steps they opened stay open.
(function () {
  "use strict";
  var opened = {};
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target.id !== "wizard-preview") return;
    opened = {};
    event.detail.target.querySelectorAll("details[open]").forEach(function (details) { opened[details.id] = true; });
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id !== "wizard-preview") return;
    Object.keys(opened).forEach(function (id) {
      var details = document.getElementById(id);
      if (details) details.open = true;
    });
  });
})();
