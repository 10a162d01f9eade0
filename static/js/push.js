// The Notifications page: turn Web Push on or off for this browser, and explain when it cannot be.
(function () {
  "use strict";

  var panel = document.getElementById("push-panel");
  if (!panel) return;
  var stateText = document.getElementById("push-state");
  var enableButton = document.getElementById("push-enable");
  var disableButton = document.getElementById("push-disable");
  // pushManager.subscribe() and serviceWorker.ready can wait forever (no push service, a stuck worker).
  // (Tests shorten it with an init script setting window.LANYARD_PUSH_TIMEOUT_MS.)
  var SUBSCRIBE_TIMEOUT_MS = window.LANYARD_PUSH_TIMEOUT_MS || 15000;

  function show(id, visible) {
    var element = document.getElementById(id);
    if (element) element.hidden = !visible;
  }

  function say(text) {
    stateText.textContent = text;
  }

  function isIos() {
    return /iPad|iPhone|iPod/.test(navigator.userAgent) || (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
  }

  function isStandalone() {
    return window.matchMedia("(display-mode: standalone)").matches || navigator.standalone === true;
  }

  // Only Lanyard's own sentences reach the page: a browser's error text ("Registration failed -
  // permission denied") means nothing to a teacher, so anything else becomes a plain next step.
  function ourError(message) {
    var error = new Error(message);
    error.ours = true;
    return error;
  }

  function plainMessage(error, fallback) {
    return error && error.ours ? error.message : fallback;
  }

  var COULD_NOT_TURN_ON = "Notifications could not be turned on. Try again; if it keeps happening, check that this browser allows notifications for Lanyard.";

  function withTimeout(promise, ms, message) {
    return new Promise(function (resolve, reject) {
      var timer = setTimeout(function () { reject(ourError(message)); }, ms);
      promise.then(
        function (value) { clearTimeout(timer); resolve(value); },
        function (error) { clearTimeout(timer); reject(error); }
      );
    });
  }

  function keyBytes(base64url) {
    var padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function sameKey(subscription, wanted) {
    var current = subscription.options && subscription.options.applicationServerKey;
    if (!current) return true;
    var have = new Uint8Array(current);
    if (have.length !== wanted.length) return false;
    for (var i = 0; i < have.length; i += 1) if (have[i] !== wanted[i]) return false;
    return true;
  }

  function markThisBrowser(endpoint) {
    var cards = document.querySelectorAll("#push-subscriptions [data-endpoint]");
    for (var i = 0; i < cards.length; i += 1) {
      var mark = cards[i].querySelector(".push-this");
      if (mark) mark.hidden = cards[i].getAttribute("data-endpoint") !== endpoint;
    }
  }

  function problemText(response, fallback) {
    return response.json().then(function (body) { return body.detail || body.title || fallback; }, function () { return fallback; });
  }

  function saveOnServer(subscription) {
    return window.lanyardApi("/push-subscriptions", { method: "POST", body: subscription.toJSON() }).then(function (response) {
      if (response.ok) return response.json();
      return problemText(response, "Lanyard could not save this browser.").then(function (text) { throw ourError(text); });
    });
  }

  function registration() {
    return withTimeout(navigator.serviceWorker.ready, SUBSCRIBE_TIMEOUT_MS, "Lanyard's offline helper did not start; reload the page and try again.");
  }

  // A button that is hidden or disabled while it has focus drops a keyboard user to the top of the
  // page: hand focus on to what replaced it.
  function handFocus(from, to) {
    var active = document.activeElement;
    if (active === from || active === document.body || active === null) to.focus();
  }

  function showOn(subscription) {
    say("Notifications are on for this browser.");
    panel.dataset.pushState = "on";
    enableButton.hidden = true;
    disableButton.hidden = false;
    handFocus(enableButton, disableButton);
    markThisBrowser(subscription.endpoint);
  }

  function showOff(message) {
    say(message || "Notifications are off for this browser.");
    panel.dataset.pushState = "off";
    enableButton.hidden = false;
    enableButton.disabled = false;
    disableButton.hidden = true;
    handFocus(disableButton, enableButton);
  }

  function turnOn() {
    enableButton.disabled = true;
    say("Asking this browser for permission…");
    var wanted = keyBytes(panel.getAttribute("data-vapid-key"));
    Promise.resolve(Notification.requestPermission())
      .then(function (permission) {
        if (permission !== "granted") {
          var error = new Error("Notifications were not allowed.");
          error.blocked = permission === "denied";
          throw error;
        }
        return registration();
      })
      .then(function (reg) {
        return reg.pushManager.getSubscription().then(function (existing) {
          if (existing && !sameKey(existing, wanted)) {
            return existing.unsubscribe().then(function () { return null; });
          }
          return existing;
        }).then(function (existing) {
          if (existing) return existing;
          return withTimeout(
            reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: wanted }),
            SUBSCRIBE_TIMEOUT_MS,
            "The browser's push service did not answer. Check the connection and try again."
          );
        });
      })
      .then(function (subscription) {
        return saveOnServer(subscription).then(function () { return subscription; });
      })
      .then(function (subscription) {
        showOn(subscription);
        window.location.reload();
      })
      .catch(function (error) {
        if (error && error.blocked) {
          show("push-blocked", true);
          enableButton.hidden = true;
          say("Notifications are blocked for Lanyard in this browser.");
          handFocus(enableButton, document.getElementById("push-state"));
          return;
        }
        showOff(plainMessage(error, COULD_NOT_TURN_ON));
      });
  }

  function turnOff() {
    disableButton.disabled = true;
    registration()
      .then(function (reg) { return reg.pushManager.getSubscription(); })
      .then(function (subscription) {
        if (!subscription) return null;
        return window.lanyardApi("/push-subscriptions").then(function (response) { return response.json(); }).then(function (body) {
          var mine = (body.items || []).filter(function (item) { return item.endpoint === subscription.endpoint; });
          return Promise.all(mine.map(function (item) {
            return window.lanyardApi("/push-subscriptions/" + item.id, { method: "DELETE" });
          }));
        }).then(function () { return subscription.unsubscribe(); });
      })
      .then(function () { window.location.reload(); })
      .catch(function () {
        disableButton.disabled = false;
        handFocus(disableButton, disableButton);
        say("Notifications could not be turned off; try again.");
      });
  }

  enableButton.addEventListener("click", turnOn);
  disableButton.addEventListener("click", turnOff);

  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    if (isIos() && !isStandalone()) {
      show("push-ios", true);
      say("On iPhone and iPad, add Lanyard to your Home Screen first, then open it from there.");
    } else {
      show("push-unsupported", true);
      say("This browser cannot show notifications.");
    }
    panel.dataset.pushState = "unsupported";
    return;
  }
  if (isIos()) show("push-ios", !isStandalone());
  if (Notification.permission === "denied") {
    show("push-blocked", true);
    say("Notifications are blocked for Lanyard in this browser.");
    panel.dataset.pushState = "blocked";
    return;
  }
  registration()
    .then(function (reg) { return reg.pushManager.getSubscription(); })
    .then(function (subscription) {
      if (subscription && Notification.permission === "granted") {
        // Refresh it on the server: it may be new to this person, or have been removed there.
        return saveOnServer(subscription).then(function () { showOn(subscription); });
      }
      showOff();
      return null;
    })
    .catch(function (error) { showOff(plainMessage(error, "Notifications are off for this browser.")); });
})();
