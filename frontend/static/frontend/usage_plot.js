// The usage page's chart (uPlot): core-hours, GPU-hours and SU per month, from the container's data-months
// JSON ([{month: "YYYY-MM", core_hours, gpu_hours, service_units}, ...]). Drawn again when the filters swap
// the results in (htmx), when the theme changes and when the width does.
(function () {
  "use strict";
  var HEIGHT_PX = 300;
  var FIGURES = [
    { key: "core_hours", label: "Core-hours" },
    { key: "gpu_hours", label: "GPU-hours" },
    { key: "service_units", label: "SU" }
  ];
  var plot = null;

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  // "2026-12" -> seconds at the start of that month (UTC), uPlot's time axis.
  function monthStart(label) {
    var parts = label.split("-");
    return Date.UTC(Number(parts[0]), Number(parts[1]) - 1, 1) / 1000;
  }

  function draw() {
    var container = document.getElementById("usage-chart");
    if (plot) { plot.destroy(); plot = null; }
    if (!container || typeof uPlot === "undefined") return;
    var months = JSON.parse(container.dataset.months || "[]");
    if (!months.length) return;
    var fg = cssVar("--fg");
    var grid = cssVar("--border");
    var data = [months.map(function (row) { return monthStart(row.month); })];
    var series = [{ label: "Month", value: "{YYYY}-{MM}" }];
    FIGURES.forEach(function (figure, i) {
      data.push(months.map(function (row) { return row[figure.key]; }));
      var colour = cssVar("--series-" + i);
      series.push({ label: figure.label, stroke: colour, width: 2, points: { show: true, size: 7, fill: colour } });
    });
    plot = new uPlot({
      width: container.clientWidth || 600,
      height: HEIGHT_PX,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      axes: [
        { stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid } },
        { label: "hours / SU", stroke: fg, size: 70, grid: { stroke: grid }, ticks: { stroke: grid } }
      ],
      series: series
    }, data, container);
  }

  // The filters swap the results in (htmx, outerHTML): a chart container without its canvas is a new one.
  new MutationObserver(function () {
    var container = document.getElementById("usage-chart");
    if (container && !container.querySelector("canvas")) draw();
  }).observe(document.body, { childList: true, subtree: true });
  new MutationObserver(draw).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  var lastWidth = 0;  // the observer's first report draws the chart
  new ResizeObserver(function (entries) {
    var width = Math.round(entries[0].contentRect.width);
    if (width !== lastWidth) { lastWidth = width; draw(); }
  }).observe(document.body);
})();
