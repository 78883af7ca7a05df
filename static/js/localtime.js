// Times are rendered in UTC by the server (<time data-local datetime="...">, see
// liveadmin/templatetags/when.py); show them in the viewer's time zone, name the
// zone (chart axes, marked data-short, rely on the page naming it once), and keep
// UTC on hover.
(function () {
  // dateStyle/timeStyle cannot be combined with timeZoneName (Chromium throws
  // "TypeError: Invalid option"), so the parts are spelled out.
  // The page's language (<html lang>, set by the server) picks the words and the
  // order of dates and times; the browser's default when the page names none.
  var locale = document.documentElement.lang || undefined;
  try { new Intl.DateTimeFormat(locale); } catch (e) { locale = undefined; }
  var base = { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
  var zoneFormat = new Intl.DateTimeFormat(locale, { timeZoneName: "short" });
  var formats = {
    minute: new Intl.DateTimeFormat(locale, base),
    second: new Intl.DateTimeFormat(locale, Object.assign({ second: "2-digit" }, base)),
    short: new Intl.DateTimeFormat(locale, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }),
  };

  function zoneName(when) {
    var part = zoneFormat.formatToParts(when).find(function (p) { return p.type === "timeZoneName"; });
    return part ? part.value : "";
  }

  function utcText(when) {
    return when.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function localise(root) {
    if (!root || !root.querySelectorAll) return;
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      if (el.hasAttribute("data-short")) {
        el.textContent = formats.short.format(when);
      } else {
        var format = el.hasAttribute("data-seconds") ? formats.second : formats.minute;
        el.textContent = format.format(when) + " " + zoneName(when);
      }
      el.title = utcText(when);
      el.setAttribute("data-localised", "");
    });
    root.querySelectorAll("[data-timezone-name]").forEach(function (el) {
      el.textContent = Intl.DateTimeFormat(locale).resolvedOptions().timeZone + " (" + zoneName(new Date()) + ")";
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { localise(document); });
  } else {
    localise(document);
  }
  document.addEventListener("htmx:afterSwap", function (e) { localise(e.target); });
  document.addEventListener("htmx:oobAfterSwap", function (e) { localise(e.target); });
})();
