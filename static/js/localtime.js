// Times are stored and rendered in UTC; show them in the browser's time zone.
(function () {
  function localise(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      el.textContent = when.toLocaleString(undefined, {
        dateStyle: "medium", timeStyle: "short", timeZoneName: "short",
      });
      el.title = el.getAttribute("datetime");
    });
  }
  document.addEventListener("DOMContentLoaded", function () { localise(document); });
  document.addEventListener("htmx:afterSwap", function (e) { localise(e.target); });
})();
