// The app form lists the regions of the chosen provider only.
(function () {
  function init() {
    var provider = document.querySelector("select[data-regions]");
    var region = provider && provider.form ? provider.form.elements.namedItem("region") : null;
    if (!provider || !region) return;
    var byProvider = JSON.parse(provider.getAttribute("data-regions"));
    function fill() {
      var regions = byProvider[provider.value] || [];
      var current = region.value;
      region.replaceChildren(new Option("---------", ""));
      regions.forEach(function (pair) {
        region.append(new Option(pair[1], pair[0], false, pair[0] === current));
      });
    }
    provider.addEventListener("change", fill);
    fill();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
