// The energy plot (uPlot) of the job page and the pipeline page: reads the energy series from the API with the
// session, draws the chosen ones against the step (one y axis per kind of quantity), redraws every 10 s while
// the container says it is active, reads a last time when `stopEvent` fires (the page's poll saw it settle), and
// follows the light/dark theme. `markers(answer)` may give vertical lines to draw: [{step, label}, ...]. The 3D
// view's frame ("portal:frame", with its step) is drawn as a solid line, the plot's cursor set on it.
(function () {
  "use strict";
  var REFRESH_MS = 10000;
  var HEIGHT_PX = 320;
  var COLUMNS = ["TOTAL", "POTENTIAL", "KINETIC", "TEMP", "PRESSURE", "VOLUME"];
  var CHECKED_FIRST = ["TOTAL", "POTENTIAL", "KINETIC", "TEMP"];
  var LABELS = { TOTAL: "Total", POTENTIAL: "Potential", KINETIC: "Kinetic", TEMP: "Temperature",
                 PRESSURE: "Pressure", VOLUME: "Volume" };
  var GROUP = { TOTAL: "energy", POTENTIAL: "energy", KINETIC: "energy", TEMP: "temperature",
                PRESSURE: "pressure", VOLUME: "volume" };
  var AXIS_LABELS = { energy: "Energy (kcal/mol)", temperature: "Temperature (K)", pressure: "Pressure (bar)",
                      volume: "Volume (Å³)" };

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  window.portalEnergyPlot = function (settings) {
    var container = document.getElementById("energy-plot");
    if (!container || typeof uPlot === "undefined") return;
    var chooser = document.getElementById("energy-series");
    var empty = document.getElementById("energy-empty");
    var emptyText = empty.textContent;
    var markers = settings.markers || function () { return []; };
    var plot = null;
    var plotShape = "";  // the series and theme the current plot was built for
    var latest = null;  // the last answer of the API: {titles: [...], series: {COLUMN: [[step, value], ...]}, ...}
    var frameStep = null;  // the step of the frame the 3D view shows

    function available() {
      if (!latest) return [];
      return COLUMNS.filter(function (column) { return (latest.series[column] || []).length > 0; });
    }

    function addCheckboxes(columns) {
      columns.forEach(function (column) {
        if (chooser.querySelector('input[value="' + column + '"]')) return;
        var label = document.createElement("label");
        var box = document.createElement("input");
        box.type = "checkbox";
        box.value = column;
        box.checked = CHECKED_FIRST.indexOf(column) >= 0;
        var swatch = document.createElement("span");
        swatch.className = "energy-swatch series-" + column;
        swatch.setAttribute("aria-hidden", "true");
        label.append(box, swatch, " " + LABELS[column]);
        chooser.append(label);
      });
      chooser.hidden = columns.length === 0;
    }

    function chosen() {
      return available().filter(function (column) {
        var box = chooser.querySelector('input[value="' + column + '"]');
        return box && box.checked;
      });
    }

    // uPlot wants one x array and one y array per series, aligned: the union of the steps, null where a
    // series has no value (NAMD's nan is dropped by the API).
    function aligned(columns) {
      var steps = {};
      columns.forEach(function (column) {
        latest.series[column].forEach(function (point) { steps[point[0]] = true; });
      });
      var xs = Object.keys(steps).map(Number).sort(function (a, b) { return a - b; });
      var index = {};
      xs.forEach(function (step, i) { index[step] = i; });
      var data = [xs];
      columns.forEach(function (column) {
        var ys = xs.map(function () { return null; });
        latest.series[column].forEach(function (point) { ys[index[point[0]]] = point[1]; });
        data.push(ys);
      });
      return data;
    }

    // The 3D view's frame: a solid line at its step.
    function drawFrame(u) {
      if (frameStep === null) return;
      var x = Math.round(u.valToPos(frameStep, "x", true));
      var box = u.bbox;
      if (x < box.left || x > box.left + box.width) return;
      var ctx = u.ctx;
      ctx.save();
      ctx.strokeStyle = cssVar("--fg");
      ctx.lineWidth = 2 * devicePixelRatio;
      ctx.beginPath();
      ctx.moveTo(x, box.top);
      ctx.lineTo(x, box.top + box.height);
      ctx.stroke();
      ctx.restore();
    }

    // A dashed vertical line, labelled, at each marker's step inside the plotting area.
    function drawMarkers(u) {
      drawFrame(u);
      var lines = latest ? markers(latest) : [];
      if (!lines.length) return;
      var ctx = u.ctx;
      var box = u.bbox;
      ctx.save();
      ctx.strokeStyle = cssVar("--muted");
      ctx.fillStyle = cssVar("--muted");
      ctx.lineWidth = 1;
      ctx.setLineDash([4, 4]);
      ctx.font = Math.round(11 * devicePixelRatio) + "px system-ui, sans-serif";
      lines.forEach(function (line) {
        if (line.step === null || line.step === undefined) return;
        var x = Math.round(u.valToPos(line.step, "x", true));
        if (x < box.left || x > box.left + box.width) return;
        ctx.beginPath();
        ctx.moveTo(x, box.top);
        ctx.lineTo(x, box.top + box.height);
        ctx.stroke();
        ctx.fillText(line.label, x + 3 * devicePixelRatio, box.top + 12 * devicePixelRatio);
      });
      ctx.restore();
    }

    function options(columns) {
      var fg = cssVar("--fg");
      var grid = cssVar("--border");
      var groups = [];
      columns.forEach(function (column) {
        if (groups.indexOf(GROUP[column]) < 0) groups.push(GROUP[column]);
      });
      var axes = [{ label: "Step", stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid } }];
      var scales = { x: { time: false } };
      groups.forEach(function (group, i) {
        scales[group] = { auto: true };
        axes.push({ scale: group, label: AXIS_LABELS[group], side: i % 2 === 0 ? 3 : 1, stroke: fg, size: 70,
                    grid: { show: i === 0, stroke: grid }, ticks: { stroke: grid } });
      });
      var series = [{ label: "Step" }].concat(columns.map(function (column) {
        return { label: LABELS[column], scale: GROUP[column], stroke: cssVar("--energy-" + column.toLowerCase()),
                 width: 1.5, spanGaps: true, points: { show: false } };
      }));
      return { width: container.clientWidth || 600, height: HEIGHT_PX, scales: scales, axes: axes, series: series,
               cursor: { drag: { x: true, y: false } }, hooks: { draw: [drawMarkers] } };
    }

    function showEmpty(text) {
      if (plot) plot.destroy();
      plot = null;
      plotShape = "";
      empty.textContent = text;
      empty.hidden = false;
      container.dataset.points = "0";
    }

    function draw() {
      var columns = chosen();
      if (available().length === 0) return showEmpty(emptyText);
      if (columns.length === 0) return showEmpty("Choose at least one series to plot.");
      var data = aligned(columns);
      var shape = columns.join(",") + "|" + cssVar("--fg");
      if (plot && shape === plotShape) {
        plot.setData(data);
      } else {
        if (plot) plot.destroy();
        plot = new uPlot(options(columns), data, container);
        plotShape = shape;
      }
      empty.hidden = true;
      container.dataset.points = String(data[0].length);
      container.dataset.markers = String(markers(latest).length);
    }

    function load() {
      return fetch(container.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("energies: HTTP " + response.status);
          return response.json();
        })
        .then(function (answer) {
          latest = answer;
          addCheckboxes(available());
          draw();
        })
        .catch(function (error) { console.warn(error); });  // the plot keeps what it had; the next refresh retries
    }

    chooser.addEventListener("change", draw);
    document.addEventListener("portal:frame", function (event) {
      frameStep = event.detail.step;
      container.dataset.frameStep = frameStep === null ? "" : String(frameStep);
      if (!plot || frameStep === null) return;
      plot.redraw(false);
      plot.setCursor({ left: plot.valToPos(frameStep, "x"), top: plot.bbox.height / devicePixelRatio / 2 });
    });
    window.portalLivePlot({
      container: container,
      load: load,
      stopEvent: settings.stopEvent,  // the page's poll answers once settled with this HX-Trigger event
      refreshMs: REFRESH_MS,
      heightPx: HEIGHT_PX,
      currentPlot: function () { return plot; },
      redraw: function () {
        plotShape = "";
        if (latest) draw();
      },
    });
  };
})();
