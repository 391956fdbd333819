// The job page: the energy plot (energy_plot.js), stopped after a last read once the status poll reports the job
// settled ("job-terminal": ended, with the rest of its log read), and the log tails, opened scrolled to their end.
(function () {
  "use strict";
  function scrollTails(root) {
    root.querySelectorAll("pre[data-tail]").forEach(function (pre) { pre.scrollTop = pre.scrollHeight; });
  }
  scrollTails(document);
  document.addEventListener("htmx:load", function (event) {
    if (event.detail.elt.classList && event.detail.elt.classList.contains("job-log")) scrollTails(event.detail.elt);
  });
  document.addEventListener("portal:tab", function (event) {
    var panel = document.getElementById(event.target.getAttribute("aria-controls"));
    if (panel) scrollTails(panel);
  });
  window.portalEnergyPlot({ stopEvent: "job-terminal" });
})();
