// Submit a form when one of its [data-autosubmit] fields changes. A static file
// instead of an inline onchange: the Content-Security-Policy allows no inline script.
document.addEventListener("change", function (event) {
  var field = event.target;
  if (field.matches && field.matches("[data-autosubmit]") && field.form) {
    field.form.submit();
  }
});
