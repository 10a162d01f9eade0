// The approvals inbox: checks the API for new or settled requests and offers to show the fresh list.
// It never rewrites the list itself, so a decision being typed is never swept away.
(function () {
  "use strict";

  var news = document.getElementById("inbox-news");
  var newsText = document.getElementById("inbox-news-text");
  if (!news || !newsText || !window.lanyardApi) return;

  var shown = (news.getAttribute("data-pending-ids") || "").split(",").filter(Boolean).sort().join(",");
  var EVERY = 5000;
  var delay = EVERY;
  var timer = null;

  function schedule(ms) {
    clearTimeout(timer);
    if (document.visibilityState !== "hidden") timer = setTimeout(poll, ms);
  }

  function poll() {
    window.lanyardApi("/permission-requests?scope=pending")
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.json();
      })
      .then(function (data) {
        var ids = data.items.map(function (item) { return String(item.id); }).sort().join(",");
        if (ids !== shown) {
          var count = data.items.length;
          newsText.textContent = count === 0 ? "Nothing is waiting now." : "The list has changed: " + count + " waiting now.";
          news.hidden = false;
        }
        delay = EVERY;
        schedule(delay);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 60000);
        schedule(delay);
      });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") schedule(0);
  });
  schedule(EVERY);
})();
