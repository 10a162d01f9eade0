// The live status of a permission request: polls the API with backoff and updates the page in place.
// Polling (not server-sent events) keeps every gunicorn worker free between checks and works through
// any proxy; the backoff keeps a waiting phone's traffic small.
(function () {
  "use strict";

  var card = document.getElementById("request-status");
  if (!card || !window.lanyardApi) return;

  var requestId = card.getAttribute("data-request-id");
  var statusText = document.getElementById("status-text");
  var note = document.getElementById("status-note");
  var noteText = document.getElementById("status-note-text");
  var endForm = document.getElementById("end-form");
  var withdrawForm = document.getElementById("withdraw-form");

  var FINAL = { denied: true, withdrawn: true, expired: true, ended: true };
  var FIRST_DELAY = 1000;
  var MAX_WAITING_DELAY = 5000;
  var APPROVED_DELAY = 30000;
  var delay = FIRST_DELAY;
  var timer = null;

  function show(data) {
    var changed = card.getAttribute("data-status") !== data.status;
    card.setAttribute("data-status", data.status);
    if (statusText.textContent !== data.status_text) statusText.textContent = data.status_text;
    noteText.textContent = data.decision_note || "";
    note.hidden = !data.decision_note;
    // A keyboard or screen-reader user resting on Withdraw would be dropped on the page body when it
    // goes away: hand focus to the news first (the next Tab then reaches the new button).
    var focused = document.activeElement;
    var endGoes = data.status !== "approved";
    var withdrawGoes = data.status !== "pending";
    if ((endGoes && endForm.contains(focused)) || (withdrawGoes && withdrawForm.contains(focused))) {
      statusText.focus();
    }
    endForm.hidden = endGoes;
    withdrawForm.hidden = withdrawGoes;
    return changed;
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }

  function poll() {
    window.lanyardApi("/permission-requests/" + encodeURIComponent(requestId))
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.json();
      })
      .then(function (data) {
        var changed = show(data);
        if (FINAL[data.status]) return;
        if (data.status === "approved") {
          schedule(APPROVED_DELAY);
          return;
        }
        delay = changed ? FIRST_DELAY : Math.min(Math.round(delay * 1.5), MAX_WAITING_DELAY);
        schedule(delay);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 60000);
        schedule(delay);
      });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && !FINAL[card.getAttribute("data-status")]) {
      delay = FIRST_DELAY;
      schedule(0);
    }
  });

  if (!FINAL[card.getAttribute("data-status")]) schedule(FIRST_DELAY);
})();
