// Send page helpers: UTF-8 byte counters, a JSON hint, and the browser's time zone.
// No framework; re-run on every htmx swap through htmx.onLoad.
(function () {
  "use strict";
  var encoder = new TextEncoder();
  // Numbers in the page's language; texts from the template (data-* attributes of
  // #send-texts, translated there), with English as the fallback.
  var number = new Intl.NumberFormat(document.documentElement.lang || undefined);
  var DEFAULTS = {
    bytes: "{used} / {max} bytes",
    jsonLater: "Checked as JSON once the variables are filled in.",
    jsonValid: "Valid JSON",
    jsonInvalid: "Not valid JSON yet: {error}",
  };

  function text(name, values) {
    var holder = document.getElementById("send-texts");
    var template = (holder && holder.dataset[name]) || DEFAULTS[name];
    return template.replace(/\{(\w+)\}/g, function (whole, key) {
      return values && key in values ? values[key] : whole;
    });
  }

  function counterFor(field) {
    var id = field.id + "-counter";
    var counter = document.getElementById(id);
    if (!counter) {
      counter = document.createElement("span");
      counter.id = id;
      counter.className = "counter";
      // Floated before the label so it sits at the right of the label's line
      // without becoming part of the field's accessible name; the field points
      // to it with aria-describedby instead.
      var label = field.labels && field.labels[0];
      (label || field).insertAdjacentElement("beforebegin", counter);
      var described = field.getAttribute("aria-describedby");
      field.setAttribute("aria-describedby", described ? described + " " + id : id);
    }
    return counter;
  }

  function updateCounter(field) {
    var max = parseInt(field.dataset.maxBytes, 10);
    var bytes = encoder.encode(field.value).length;
    var counter = counterFor(field);
    counter.textContent = text("bytes", { used: number.format(bytes), max: number.format(max) });
    counter.classList.toggle("over", bytes > max);
    field.setAttribute("aria-invalid", bytes > max ? "true" : "false");
  }

  function updateJsonHint(field) {
    var id = field.id + "-json";
    var hint = document.getElementById(id);
    if (!hint) {
      hint = document.createElement("p");
      hint.id = id;
      hint.className = "json-hint small";
      field.insertAdjacentElement("afterend", hint);
    }
    var value = field.value.trim();
    if (!value) { hint.textContent = ""; hint.className = "json-hint small"; return; }
    // A {variable} is filled in before the check that counts, on the server.
    if (/\{[A-Za-z_][A-Za-z0-9_]*\}/.test(value)) {
      hint.textContent = text("jsonLater");
      hint.className = "json-hint small muted";
      return;
    }
    try {
      JSON.parse(value);
      hint.textContent = text("jsonValid");
      hint.className = "json-hint small ok";
    } catch (err) {
      hint.textContent = text("jsonInvalid", { error: err.message });
      hint.className = "json-hint small bad";
    }
  }

  function init(root) {
    root.querySelectorAll("[data-max-bytes]").forEach(updateCounter);
    // A field the server already flagged shows that message, not a second one.
    root.querySelectorAll("[data-json]").forEach(function (field) {
      if (!field.closest(".has-error")) updateJsonHint(field);
    });
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    root.querySelectorAll("input[name=tz]").forEach(function (input) {
      if (!input.value && zone) input.value = zone;
    });
  }

  document.addEventListener("input", function (event) {
    var field = event.target;
    if (field.dataset && field.dataset.maxBytes) updateCounter(field);
    if (field.dataset && field.dataset.json) updateJsonHint(field);
  });

  if (window.htmx) {
    htmx.onLoad(init);
  } else {
    document.addEventListener("DOMContentLoaded", function () { init(document); });
  }
})();
