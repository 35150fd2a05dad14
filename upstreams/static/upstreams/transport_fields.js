// Add/edit a server: show only the chosen transport's fieldset as the transport select changes.
// Without JavaScript the page does the same server-side (?transport= links); a hidden fieldset is
// also disabled, so nothing in it is submitted.
(function () {
  "use strict";
  var select = document.getElementById("id_transport");
  var data = document.getElementById("hosted-transports");
  if (!select || !data) return;
  var hosted = JSON.parse(data.textContent);
  function show() {
    var stdio = hosted.indexOf(select.value) >= 0;
    document.querySelectorAll("[data-transport-fields]").forEach(function (set) {
      var on = (set.getAttribute("data-transport-fields") === "stdio") === stdio;
      set.hidden = !on;
      set.disabled = !on;
    });
  }
  select.addEventListener("change", show);
})();
