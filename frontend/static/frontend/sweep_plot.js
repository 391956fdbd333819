// The sweep page's plot (uPlot): a figure of every point (total energy, temperature, ns/day...) against a swept
// variable, one line per combination of the other swept variables, read from the sweeps API with the session.
// The two selects choose the figure and the variable; while the page says points are moving it reads again
// every 10 s, and once more when the rows' poll reports that nothing moves any more ("sweep-settled").
// A variable whose values are not all numbers (text, choice, on/off) is drawn at evenly spaced places, in the
// order of its values in the sweep (the page's "sweep-axes-data" JSON).
(function () {
  "use strict";
  var REFRESH_MS = 10000;
  var HEIGHT_PX = 320;
  var PALETTE_SIZE = 8;
  var container = document.getElementById("sweep-plot");
  if (!container || typeof uPlot === "undefined") return;
  var figureSelect = document.getElementById("sweep-plot-figure");
  var axisSelect = document.getElementById("sweep-plot-axis");
  var empty = document.getElementById("sweep-plot-empty");
  var axes = JSON.parse(document.getElementById("sweep-axes-data").textContent);
  var plot = null;
  var latest = null;  // the API's answer: {figure, label, unit, axis, series: [{label, points: [[x, y], ...]}]}

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function axisValues(name) {
    var found = axes.filter(function (axis) { return axis.name === name; })[0];
    return found ? found.values : [];
  }

  function key(value) { return JSON.stringify(value); }

  // The x of each swept value: itself when every value is a number, else its place among the axis's values.
  function positions(answer) {
    var values = axisValues(answer.axis);
    var numeric = values.every(function (value) { return typeof value === "number"; });
    var place = {};
    values.forEach(function (value, i) { place[key(value)] = numeric ? value : i; });
    return { numeric: numeric, values: values, of: function (value) { return place[key(value)]; } };
  }

  // uPlot wants one x array and one y array per series, aligned: the union of the xs, null where a series
  // has no point there.
  function aligned(answer, where) {
    var xs = {};
    answer.series.forEach(function (series) {
      series.points.forEach(function (point) { xs[where.of(point[0])] = true; });
    });
    var sorted = Object.keys(xs).map(Number).sort(function (a, b) { return a - b; });
    var index = {};
    sorted.forEach(function (x, i) { index[x] = i; });
    var data = [sorted];
    answer.series.forEach(function (series) {
      var ys = sorted.map(function () { return null; });
      series.points.forEach(function (point) { ys[index[where.of(point[0])]] = point[1]; });
      data.push(ys);
    });
    return data;
  }

  function options(answer, where) {
    var fg = cssVar("--fg");
    var grid = cssVar("--border");
    var xAxis = { label: answer.axis, stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid } };
    if (!where.numeric) {
      xAxis.splits = function () { return where.values.map(function (_, i) { return i; }); };
      xAxis.values = function (u, splits) { return splits.map(function (i) { return String(where.values[i]); }); };
    }
    var series = [{ label: answer.axis }].concat(answer.series.map(function (series, i) {
      var colour = cssVar("--series-" + (i % PALETTE_SIZE));
      return { label: series.label || answer.label, stroke: colour, width: 1.5, spanGaps: true,
               points: { show: true, size: 7, fill: colour } };
    }));
    return { width: container.clientWidth || 600, height: HEIGHT_PX, scales: { x: { time: false } },
             axes: [xAxis, { label: answer.label + " (" + answer.unit + ")", stroke: fg, size: 80,
                             grid: { stroke: grid }, ticks: { stroke: grid } }],
             series: series };
  }

  function draw() {
    if (plot) plot.destroy();
    plot = null;
    var count = latest ? latest.series.reduce(function (n, series) { return n + series.points.length; }, 0) : 0;
    container.dataset.points = String(count);
    container.dataset.series = String(latest ? latest.series.length : 0);
    empty.hidden = count > 0;
    if (!count) return;
    var where = positions(latest);
    plot = new uPlot(options(latest, where), aligned(latest, where), container);
  }

  function load() {
    var url = container.dataset.url + "?figure=" + encodeURIComponent(figureSelect.value) +
              "&axis=" + encodeURIComponent(axisSelect.value);
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("sweep plot: HTTP " + response.status);
        return response.json();
      })
      .then(function (answer) {
        latest = answer;
        container.dataset.figure = answer.figure;
        container.dataset.axis = answer.axis;
        draw();
      })
      .catch(function (error) { console.warn(error); });  // the plot keeps what it had; the next read retries
  }

  figureSelect.addEventListener("change", load);
  axisSelect.addEventListener("change", load);
  window.portalLivePlot({
    container: container,
    load: load,
    stopEvent: "sweep-settled",  // the rows' poll answers with it once nothing moves
    refreshMs: REFRESH_MS,
    heightPx: HEIGHT_PX,
    currentPlot: function () { return plot; },
    redraw: function () { if (latest) draw(); },
  });
})();
