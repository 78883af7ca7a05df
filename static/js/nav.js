// The main navigation collapses behind a "Menu" button on narrow screens.
(function () {
  function init() {
    var button = document.querySelector(".nav-toggle");
    var sidebar = document.getElementById("sidebar");
    if (!button || !sidebar) return;
    button.addEventListener("click", function () {
      var open = sidebar.classList.toggle("open");
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
