// The 3D view's trigger on the job and run pages: when htmx swaps in the viewer panel (#viewer), the panel's
// script (viewer.js, which then loads NGL) is added to the page, or started again if it is already there. htmx
// itself runs no script of a fragment (allowScriptTags is off), and nothing of the viewer loads before this.
(function () {
  "use strict";
  document.addEventListener("htmx:load", function (event) {
    var element = event.detail.elt;
    var panel = element.id === "viewer" ? element : (element.querySelector && element.querySelector("#viewer"));
    if (!panel) return;
    if (window.portalViewerStart) {
      window.portalViewerStart();
      return;
    }
    var script = document.createElement("script");
    script.src = panel.dataset.script;
    document.head.appendChild(script);
  });
})();
