// Label and report pages: the Print button, and "choose all / none" on the label picker.
(function () {
  "use strict";

  function setUp() {
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
    document.querySelectorAll(".check-helpers").forEach(function (helpers) { helpers.hidden = false; });
    function setAll(name, checked) {
      document.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (box) { box.checked = checked; });
    }
    document.querySelectorAll("[data-check-all]").forEach(function (button) {
      button.addEventListener("click", function () { setAll(button.getAttribute("data-check-all"), true); });
    });
    document.querySelectorAll("[data-check-none]").forEach(function (button) {
      button.addEventListener("click", function () { setAll(button.getAttribute("data-check-none"), false); });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
