// Send log filters: read the time filters in the browser's time zone (sent as "tz"),
// and keep bookmarkable URLs short by leaving empty filters out of the query.
(function () {
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) {}

  function form() { return document.querySelector("form.audit-filters"); }

  function fillZone() {
    var input = document.querySelector('.audit-filters input[name="tz"]');
    if (input && !input.value) { input.value = zone; }
  }

  function init() {
    fillZone();
    var f = form();
    if (f && zone && zone !== f.getAttribute("data-tz") && !new URLSearchParams(location.search).has("tz")) {
      // First visit: reload the table in the browser's zone.
      var query = new URLSearchParams(location.search);
      query.set("tz", zone);
      htmx.ajax("GET", location.pathname + "?" + query.toString(), { target: "#audit-table", swap: "outerHTML" });
    }
  }

  document.addEventListener("htmx:afterSettle", fillZone);
  document.addEventListener("htmx:configRequest", function (event) {
    if (!event.detail.elt.closest || !event.detail.elt.closest(".audit-filters")) return;
    var params = event.detail.parameters;
    var keys = params.keys ? Array.from(params.keys()) : Object.keys(params);
    keys.forEach(function (key) {
      var value = params.get ? params.get(key) : params[key];
      if (value === "") { if (params.delete) { params.delete(key); } else { delete params[key]; } }
    });
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
