// The jobs list: the select-all checkbox and the bulk buttons (disabled with nothing selected, confirmed with the
// number selected through portal.js's <form data-confirm>), kept right when the polled rows are swapped.
(function () {
  "use strict";

  function bulkForm() {
    return document.querySelector("[data-bulk-form]");
  }

  function jobBoxes(form) {
    return Array.prototype.filter.call(form.elements, function (element) {
      return element.name === "job_ids";
    });
  }

  function selectedCount(form) {
    return jobBoxes(form).filter(function (box) { return box.checked; }).length;
  }

  function refresh() {
    var form = bulkForm();
    if (!form) return;
    var boxes = jobBoxes(form);
    var checked = selectedCount(form);
    var all = document.querySelector("[data-select-all]");
    if (all) {
      all.checked = boxes.length > 0 && checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    }
    form.querySelectorAll("[data-bulk-action]").forEach(function (button) {
      button.disabled = checked === 0;
    });
    var status = form.querySelector("[data-selected-count]");
    if (status) status.textContent = checked === 1 ? "1 job selected" : checked + " jobs selected";
  }

  document.addEventListener("change", function (event) {
    var form = bulkForm();
    if (!form) return;
    if (event.target.matches("[data-select-all]")) {
      jobBoxes(form).forEach(function (box) { box.checked = event.target.checked; });
    }
    if (event.target.form === form) refresh();
  });

  // A click on a bulk button comes before the form's submit event, which portal.js confirms.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-bulk-action]");
    if (!button) return;
    button.form.dataset.confirm = button.dataset.confirmMessage.replace("{count}", String(selectedCount(button.form)));
  });

  document.addEventListener("DOMContentLoaded", refresh);
  document.addEventListener("htmx:afterSettle", refresh);
})();
