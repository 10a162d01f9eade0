// Lanyard's page script: the service worker, the "update available" prompt and a CSRF-aware fetch.
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
