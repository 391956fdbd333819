// Behaviour shared by every page: theme toggle, tabs, copy buttons, confirmations. No inline scripts
// anywhere (the pages are served with a Content-Security-Policy of 'self').
(function () {
  "use strict";
  var root = document.documentElement;
  var saved = localStorage.getItem("portal-theme");
  if (saved) root.dataset.theme = saved;

  function currentTheme() {
    if (root.dataset.theme) return root.dataset.theme;
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-theme-toggle]");
    if (toggle) {
      var next = currentTheme() === "dark" ? "light" : "dark";
      root.dataset.theme = next;
      localStorage.setItem("portal-theme", next);
      document.dispatchEvent(new CustomEvent("portal:theme", { detail: next }));
      return;
    }
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var source = document.getElementById(copy.dataset.copy);
      var text = source ? (source.value !== undefined ? source.value : source.textContent) : "";
      navigator.clipboard.writeText(text.trim()).then(function () {
        copy.textContent = "Copied";
      }, function () {
        copy.textContent = "Select and copy";
      });
      return;
    }
    var tab = event.target.closest('[role="tab"]');
    if (tab) selectTab(tab);
  });

  function selectTab(tab) {
    var list = tab.closest('[role="tablist"]');
    list.querySelectorAll('[role="tab"]').forEach(function (other) {
      var selected = other === tab;
      other.setAttribute("aria-selected", selected ? "true" : "false");
      other.tabIndex = selected ? 0 : -1;
      var panel = document.getElementById(other.getAttribute("aria-controls"));
      if (panel) panel.hidden = !selected;
    });
    tab.dispatchEvent(new CustomEvent("portal:tab", { bubbles: true }));
  }

  // Arrow keys move between tabs, as the WAI-ARIA tabs pattern asks.
  document.addEventListener("keydown", function (event) {
    var tab = event.target.closest && event.target.closest('[role="tab"]');
    if (!tab || (event.key !== "ArrowRight" && event.key !== "ArrowLeft")) return;
    var tabs = Array.prototype.slice.call(tab.closest('[role="tablist"]').querySelectorAll('[role="tab"]'));
    var next = tabs[(tabs.indexOf(tab) + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
    next.focus();
    selectTab(next);
  });

  // The life of a plot that follows a page's poll (energy_plot.js, sweep_plot.js): `load()` (a promise) reads its
  // data now and again every `refreshMs` while the container says data-active="true", and a last time when
  // `stopEvent` fires (the page's poll saw everything settle); `redraw()` follows the light/dark theme, and the
  // plot (`currentPlot()`) the container's width.
  window.portalLivePlot = function (settings) {
    var container = settings.container;
    var timer = null;
    function schedule() {
      clearTimeout(timer);
      if (container.dataset.active === "true") {
        timer = setTimeout(function () { settings.load().then(schedule); }, settings.refreshMs);
      }
    }
    document.addEventListener(settings.stopEvent, function () {
      if (container.dataset.active !== "true") return;
      container.dataset.active = "false";
      clearTimeout(timer);
      settings.load();
    });
    document.addEventListener("portal:theme", settings.redraw);
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", settings.redraw);
    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        var plot = settings.currentPlot();
        if (plot && container.clientWidth) plot.setSize({ width: container.clientWidth, height: settings.heightPx });
      }).observe(container);
    }
    settings.load().then(schedule);
  };

  // <form data-confirm="Cancel 3 jobs?"> asks before it is sent (htmx forms use hx-confirm instead).
  document.addEventListener("submit", function (event) {
    var message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  }, true);
})();
