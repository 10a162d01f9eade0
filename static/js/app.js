// Lanyard's page script: the service worker, the "update available" prompt, a CSRF-aware fetch and
// one submit per form.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // JSON calls to /api/v1 from the signed-in pages; the session cookie needs the CSRF header.
  window.lanyardApi = function (path, options) {
    options = options || {};
    var headers = Object.assign({ Accept: "application/json" }, options.headers || {});
    if (options.body && typeof options.body !== "string") {
      headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(options.body);
    }
    if (options.method && options.method !== "GET") {
      headers["X-CSRFToken"] = csrfToken();
    }
    return fetch("/api/v1" + path, Object.assign({}, options, { headers: headers, credentials: "same-origin" }));
  };

  // One tap, one action: after the first submit of a form, its buttons are disabled and show that it is
  // on its way, so a second tap on slow Wi-Fi sends nothing. The server keeps its own guard (the form's
  // one-time key); this is a courtesy. Forms a script sends itself (preventDefault) are left alone.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || (form.getAttribute("method") || "").toLowerCase() !== "post") return;
    if (form.dataset.submitting === "true") {
      event.preventDefault();
      return;
    }
    if (event.defaultPrevented) return;
    form.dataset.submitting = "true";
    form.setAttribute("aria-busy", "true");
    var buttons = form.querySelectorAll("button[type=submit], button:not([type]), input[type=submit]");
    // Disabled after this turn: a disabled submitter would drop its own name and value from the post.
    setTimeout(function () {
      buttons.forEach(function (button) {
        button.disabled = true;
        button.classList.add("is-busy");
      });
    }, 0);
    // A post that answers with a download leaves the page here: let the form be used again after a while.
    setTimeout(function () { release(form); }, 15000);
  }, false);

  function release(form) {
    delete form.dataset.submitting;
    form.removeAttribute("aria-busy");
    form.querySelectorAll(".is-busy").forEach(function (button) {
      button.disabled = false;
      button.classList.remove("is-busy");
    });
  }

  // Back to a page from the browser's cache: its forms are usable again.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) document.querySelectorAll("form[data-submitting]").forEach(release);
  });

  var updateRequested = false;

  function offerUpdate(worker) {
    var banner = document.getElementById("update-banner");
    var button = document.getElementById("update-reload");
    if (!banner || !button) return;
    banner.hidden = false;
    button.addEventListener("click", function () {
      updateRequested = true;
      worker.postMessage({ type: "SKIP_WAITING" });
    });
  }

  if ("serviceWorker" in navigator) {
    var reloading = false;
    // Reload only when the person asked for the new version: the first install also changes the
    // controller (clients.claim) and must not throw away what they are typing.
    navigator.serviceWorker.addEventListener("controllerchange", function () {
      if (reloading || !updateRequested) return;
      reloading = true;
      window.location.reload();
    });
    window.addEventListener("load", function () {
      navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(function (registration) {
        document.documentElement.dataset.swRegistered = "true";
        if (registration.waiting && navigator.serviceWorker.controller) {
          offerUpdate(registration.waiting);
        }
        registration.addEventListener("updatefound", function () {
          var incoming = registration.installing;
          if (!incoming) return;
          incoming.addEventListener("statechange", function () {
            if (incoming.state === "installed" && navigator.serviceWorker.controller) {
              offerUpdate(incoming);
            }
          });
        });
      }).catch(function () {
        document.documentElement.dataset.swRegistered = "false";
      });
    });
  }
})();

// Issue 16 (items 7 and 8): focus the error summary after a failed form, and copy buttons.
(function () {
  "use strict";

  function focusErrorSummary() {
    var summary = document.querySelector(".error-summary");
    if (summary) summary.focus();
  }

  function copyText(button) {
    var target = document.getElementById(button.dataset.copyTarget);
    var status = document.querySelector('[data-copy-status="' + button.dataset.copyTarget + '"]');
    if (!target) return;
    function say(message) { if (status) status.textContent = message; }
    var text = target.textContent.trim();
    if (!navigator.clipboard || !navigator.clipboard.writeText) {
      say("This browser cannot copy for you: select the link and copy it.");
      return;
    }
    navigator.clipboard.writeText(text).then(function () {
      say("Copied. Paste the link into your message.");
    }, function () {
      say("Could not copy: select the link and copy it.");
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-copy-target]") : null;
    if (button) copyText(button);
  });


  // The account page says whether this very browser gets notifications (the server only knows how many do).
  function showThisBrowserPushState() {
    var line = document.getElementById("account-push-this");
    if (!line) return;
    var known = (line.dataset.endpoints || "").split(" ").filter(Boolean);
    function say(text) { line.textContent = text; }
    if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
      say("This browser cannot show notifications.");
      return;
    }
    if (Notification.permission === "denied") {
      say("Notifications are blocked for Lanyard in this browser's settings.");
      return;
    }
    navigator.serviceWorker.getRegistration()
      .then(function (reg) { return reg ? reg.pushManager.getSubscription() : null; })
      .then(function (subscription) {
        var on = subscription && Notification.permission === "granted" && known.indexOf(subscription.endpoint) !== -1;
        say(on ? "This browser gets your notifications." : "This browser does not get notifications yet.");
      })
      .catch(function () { say("This browser does not get notifications yet."); });
  }

  function onReady() {
    focusErrorSummary();
    showThisBrowserPushState();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", onReady);
  } else {
    onReady();
  }
})();
