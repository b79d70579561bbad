// serialbox operator pages: live line view and trouble banner over Server-Sent
// Events, scanner-friendly inputs, and no double submits. Plain JavaScript, no build.
(function () {
  "use strict";

  // Live updates: the server sends rendered fragments when the line changes.
  function connect() {
    if (!window.EventSource) return;
    var live = document.getElementById("live");
    var es = new EventSource("/events");
    es.addEventListener("snapshot", function (ev) {
      var parts;
      try { parts = JSON.parse(ev.data); } catch (e) { return; }
      var banner = document.getElementById("banner");
      if (banner && parts.banner !== undefined) banner.innerHTML = parts.banner;
      var line = document.getElementById("line");
      if (line && parts.line !== undefined) line.innerHTML = parts.line;
      if (live) { live.className = "live on"; live.dataset.at = String(Date.now()); }
    });
    es.addEventListener("open", function () { if (live) live.className = "live on"; });
    es.addEventListener("error", function () {
      if (live) live.className = "live off";
      // A refused stream (503: too many live views open) is not retried by the
      // browser; ask again later.
      if (es.readyState === EventSource.CLOSED) setTimeout(connect, 30000);
    });
  }

  // A barcode scanner types into whatever has focus: keep the scan field focused
  // unless the operator is typing into another field.
  function keepScanFocus() {
    var scan = document.querySelector("[data-scan]");
    if (!scan) return;
    document.addEventListener("keydown", function (ev) {
      var a = document.activeElement;
      if (a && (a.tagName === "INPUT" || a.tagName === "SELECT" || a.tagName === "TEXTAREA")) return;
      if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.key.length !== 1) return;
      scan.focus();
    });
    if (scan.form && scan.form.method.toLowerCase() === "post") scan.value = "";
    scan.focus();
    scan.select();
  }

  // One click sends a form once.
  function noDoubleSubmit() {
    document.addEventListener("submit", function (ev) {
      var form = ev.target;
      if (form.dataset.sent === "1") { ev.preventDefault(); return; }
      form.dataset.sent = "1";
      setTimeout(function () { form.dataset.sent = ""; }, 3000);
    }, true);
  }

  document.addEventListener("DOMContentLoaded", function () {
    connect();
    keepScanFocus();
    noDoubleSubmit();
  });
})();
