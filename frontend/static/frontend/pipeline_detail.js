// The pipeline page: one energy plot across the run's steps (energy_plot.js) on the run's continuous step axis,
// with a dashed line where each job's energies start; stopped after a last read once the page's poll reports that
// no step is active any more ("pipeline-settled").
(function () {
  "use strict";
  // A job that printed no energies (not run yet, or cut off) "starts" where the axis ends: it gets no line, nor
  // does a second job starting at the same step.
  function markers(answer) {
    var end = null;
    Object.keys(answer.series).forEach(function (column) {
      answer.series[column].forEach(function (point) { if (end === null || point[0] > end) end = point[0]; });
    });
    var seen = {};
    return (answer.starts || []).filter(function (start) {
      var keep = start.step !== null && start.step !== undefined && start.step < end && !seen[start.step];
      seen[start.step] = true;
      return keep;
    }).map(function (start) {
      return { step: start.step, label: "step " + start.position };
    });
  }
  window.portalEnergyPlot({ stopEvent: "pipeline-settled", markers: markers });
})();
