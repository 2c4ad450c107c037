// keras-fool human study: keys 0-9 answer like the buttons; one answer per image.
(function () {
  "use strict";
  var form = document.getElementById("answer-form");
  if (!form) { return; }
  var sent = false;
  form.addEventListener("submit", function (event) {
    if (sent) { event.preventDefault(); return; }  // a second click or key before the next image
    sent = true;
    form.classList.add("sent");
  });
  document.addEventListener("keydown", function (event) {
    if (event.repeat || event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (!/^[0-9]$/.test(event.key)) { return; }
    event.preventDefault();
    var button = document.getElementById("digit-" + event.key);
    if (button && !sent) {
      if (typeof form.requestSubmit === "function") { form.requestSubmit(button); } else { button.click(); }
    }
  });
})();
