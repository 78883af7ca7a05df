// The send log page (templates/messaging/audit_list.html). A static file, not an
// inline script: the Content-Security-Policy allows scripts from 'self' only.
(function () {
  // Show times and read the time filters in the browser's time zone: the form
  // sends it as "tz"; on a first visit without one, reload the table in it.
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) {}
  function fillZone() {
    var input = document.querySelector('.audit-filters input[name="tz"]');
    if (input && !input.value) { input.value = zone; }
  }
  fillZone();
  document.body.addEventListener("htmx:afterSettle", fillZone);
  if (zone && zone !== (document.getElementById("audit-tz-name") || {}).textContent && !new URLSearchParams(location.search).has("tz")) {
    // htmx loads deferred: wait for it.
    document.addEventListener("DOMContentLoaded", function () {
      var query = new URLSearchParams(location.search);
      query.set("tz", zone);
      htmx.ajax("GET", location.pathname + "?" + query.toString(), {target: "#audit-table", swap: "outerHTML"});
    });
  }
  // Keep bookmarkable URLs short: leave empty filters out of the query.
  document.body.addEventListener("htmx:configRequest", function (event) {
    var params = event.detail.parameters;
    Array.from(params.keys()).forEach(function (key) {
      if (params.get(key) === "") { params.delete(key); }
    });
  });
})();
