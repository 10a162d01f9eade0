// The audit log's name boxes in a large trust: their suggestions are asked for as the person types,
// instead of listing tens of thousands of names in the page. Without script the boxes still work:
// the server turns whatever was typed into the matching people, devices, equipment or areas.
(function () {
  "use strict";

  var lists = document.querySelectorAll("datalist[data-suggest]");
  Array.prototype.forEach.call(lists, function (list) {
    var box = document.querySelector('input[list="' + list.id + '"]');
    if (!box) return;
    var timer = null;
    var asked = "";

    function fill(names) {
      while (list.firstChild) list.removeChild(list.firstChild);
      names.forEach(function (name) {
        var option = document.createElement("option");
        option.value = name;
        list.appendChild(option);
      });
    }

    function ask() {
      var typed = box.value.trim();
      if (typed.length < 2 || typed === asked) return;
      asked = typed;
      fetch(list.getAttribute("data-suggest") + "&q=" + encodeURIComponent(typed), {
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      })
        .then(function (response) {
          if (!response.ok) throw new Error("status " + response.status);
          return response.json();
        })
        .then(function (data) {
          if (box.value.trim() === typed) fill(data.names || []);
        })
        .catch(function () {
          asked = "";
        });
    }

    box.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(ask, 200);
    });
  });
})();
