// Browser notifications on open portal pages (CSP-safe: no inline script, nothing from elsewhere).
// The preferences page's button asks the browser's permission. On every page of a member who allowed it,
// /api/v1/notifications/recent is polled every data-notifications-poll-ms (settings.NOTIFICATIONS_POLL_MS, 30 s)
// and each new notification is shown once (the last id shown is kept in localStorage, shared by the member's
// tabs; the notification's tag dedupes the rest).
(function () {
  "use strict";
  var KEY = "portal-notifications-last-id";
  var body = document.body;
  var url = body && body.getAttribute("data-notifications-url");
  var POLL_MS = Number(body && body.getAttribute("data-notifications-poll-ms")) || 30000;

  function describe(state) {
    var shown = document.querySelector("[data-notify-permission-state]");
    if (!shown) return;
    var words = { granted: "Allowed in this browser.", denied: "Blocked in this browser's settings.", default: "Not asked yet." };
    shown.textContent = "Notification" in window ? words[state] || state : "This browser has no notifications.";
  }

  function setUpButton() {
    var button = document.querySelector("[data-notify-permission]");
    if (!button) return;
    describe("Notification" in window ? Notification.permission : "");
    button.addEventListener("click", function () {
      if (!("Notification" in window)) return describe("");
      Notification.requestPermission().then(describe);
    });
  }

  function show(item) {
    var note = new Notification(item.subject, { body: item.text, tag: "portal-" + item.id });
    note.addEventListener("click", function () { window.focus(); window.location.href = item.link; });
  }

  function poll() {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    var last = window.localStorage.getItem(KEY);
    var first = last === null;
    fetch(url + "?after=" + encodeURIComponent(last || "0"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) {
        if (!answer || !answer.browser_enabled) return;
        var items = answer.notifications || [];
        if (items.length) window.localStorage.setItem(KEY, String(items[items.length - 1].id));
        else if (first) window.localStorage.setItem(KEY, "0");
        if (!first) items.forEach(show);  // a browser's first poll only learns where it stands
        window.setTimeout(poll, POLL_MS);
      })
      .catch(function () { window.setTimeout(poll, POLL_MS); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpButton();
    if (url) window.setTimeout(poll, Math.min(1000, POLL_MS));
  });
})();
