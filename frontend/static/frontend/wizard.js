// The new-job form: the live check swaps each field's error slot out of band (htmx); this keeps the field's
// aria-invalid in step with its slot, so assistive technology hears which values are wrong.
(function () {
  "use strict";
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var slot = event.target;
    var field = slot.dataset && slot.dataset.errorFor ? document.getElementById(slot.dataset.errorFor) : null;
    if (!field) return;
    if (slot.textContent.trim()) field.setAttribute("aria-invalid", "true");
    else field.removeAttribute("aria-invalid");
  });
})();
