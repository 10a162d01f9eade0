// Lanyard's service worker. Version __VERSION__ (a hash of static/, so any change makes a new worker).
// It caches the app shell and static files, answers navigations offline with the offline page, and
// never stores a page or API answer: those can hold personal data.
"use strict";

const VERSION = "__VERSION__";
const SHELL_CACHE = "lanyard-shell-" + VERSION;
const SHELL = __SHELL__;
const OFFLINE_URL = "/offline";

// Fetched without cookies: the cached offline page is the visitor's version, never a signed-in person's.
self.addEventListener("install", (event) => {
  const requests = SHELL.map((url) => new Request(url, { credentials: "omit" }));
  event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.addAll(requests)));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((key) => key.startsWith("lanyard-") && key !== SHELL_CACHE).map((key) => caches.delete(key))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "SKIP_WAITING") {
    self.skipWaiting();
  }
});

function isStatic(url) {
  return url.origin === self.location.origin && url.pathname.startsWith("/static/");
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;

  if (request.mode === "navigate") {
    // Network only for pages (personal data is never cached); the offline page when there is no network.
    event.respondWith(
      fetch(request).catch(() => caches.match(OFFLINE_URL, { ignoreSearch: true }))
    );
    return;
  }

  if (isStatic(url)) {
    // Static files carry a version in their URL, so a cached copy is always the right one.
    event.respondWith(
      caches.open(SHELL_CACHE).then((cache) =>
        cache.match(request).then((hit) => {
          if (hit) return hit;
          return fetch(request).then((response) => {
            if (response.ok) cache.put(request, response.clone());
            return response;
          });
        })
      )
    );
  }
  // Everything else (API, manifest) goes to the network untouched.
});

// Web Push. A message is small JSON: title, body, url, kind, and for approvers a request id with
// one-time Approve/Deny tokens. The tokens are the credential for /api/v1/push-actions, so the head
// can decide from the lock screen without opening Lanyard or having a live session.
const ICON = "/static/icons/icon-192.png";

function pushData(event) {
  if (!event.data) return {};
  try {
    return event.data.json();
  } catch {
    return { title: "Lanyard", body: event.data.text() };
  }
}

function sameOriginPath(url) {
  try {
    const target = new URL(url || "/notices", self.location.origin);
    return target.origin === self.location.origin ? target.pathname + target.search + target.hash : "/notices";
  } catch {
    return "/notices";
  }
}

function showPush(data) {
  const tokens = data.actions && data.actions.approve && data.actions.deny ? data.actions : null;
  const options = {
    body: data.body || "",
    icon: ICON,
    badge: ICON,
    tag: data.request_id ? "request-" + data.request_id : "notice-" + (data.notice_id || Date.now()),
    renotify: true,
    requireInteraction: Boolean(tokens),
    data: { url: sameOriginPath(data.url), tokens: tokens, title: data.title || "Lanyard" },
  };
  if (tokens) {
    options.actions = [
      { action: "approve", title: "Approve" },
      { action: "deny", title: "Deny" },
    ];
  }
  return self.registration.showNotification(data.title || "Lanyard", options);
}

self.addEventListener("push", (event) => {
  event.waitUntil(showPush(pushData(event)));
});

function showOutcome(title, body, notification) {
  const data = notification.data || {};
  return self.registration.showNotification(title, {
    body: body,
    icon: ICON,
    tag: notification.tag,
    data: { url: data.url || "/notices", tokens: null, title: title },
  });
}

function decide(notification, action) {
  const data = notification.data || {};
  return fetch("/api/v1/push-actions", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    credentials: "same-origin",
    body: JSON.stringify({ token: data.tokens[action], action: action }),
  })
    .then((response) => response.json().then((body) => ({ ok: response.ok, body: body })))
    .then((result) => {
      if (result.ok) return showOutcome(result.body.message || (action === "approve" ? "Approved" : "Denied"), data.title, notification);
      return showOutcome("Not decided", result.body.detail || "Open Lanyard to decide.", notification);
    })
    .catch(() => showOutcome("Not decided", "Lanyard could not be reached. Open Lanyard to decide.", notification));
}

function openPage(url) {
  const target = new URL(sameOriginPath(url), self.location.origin).href;
  return self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
    const exact = windows.find((client) => client.url === target);
    if (exact) return exact.focus();
    const any = windows.find((client) => "navigate" in client);
    if (any) return any.navigate(target).then((client) => (client || any).focus());
    return self.clients.openWindow(target);
  });
}

self.addEventListener("notificationclick", (event) => {
  const notification = event.notification;
  const data = notification.data || {};
  notification.close();
  const work = (event.action === "approve" || event.action === "deny") && data.tokens
    ? decide(notification, event.action)
    : openPage(data.url);
  // An event the browser dispatched may outlive this handler; one dispatched by script may not.
  if (event.isTrusted) event.waitUntil(work);
});
