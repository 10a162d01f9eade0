// Passkeys: add one from the account page, sign in with one from the sign-in page.
(function () {
  "use strict";

  function toBytes(base64url) {
    var base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function post(path, body) {
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), Accept: "application/json" },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error(data.detail || data.title || "Something went wrong.");
        return data;
      });
    });
  }

  function say(element, message) {
    if (element) element.textContent = message;
  }

  function serialise(credential) {
    var response = credential.response;
    var out = {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: { clientDataJSON: toBase64url(response.clientDataJSON) }
    };
    if (credential.authenticatorAttachment) out.authenticatorAttachment = credential.authenticatorAttachment;
    if (response.attestationObject) {
      out.response.attestationObject = toBase64url(response.attestationObject);
      if (response.getTransports) out.response.transports = response.getTransports();
    } else {
      out.response.authenticatorData = toBase64url(response.authenticatorData);
      out.response.signature = toBase64url(response.signature);
      if (response.userHandle) out.response.userHandle = toBase64url(response.userHandle);
    }
    return out;
  }

  function addPasskey(button) {
    var status = document.getElementById("passkey-status");
    var nameInput = document.getElementById("passkey-name");
    button.disabled = true;
    say(status, "Follow your phone's prompt…");
    post("/account/passkeys/options").then(function (options) {
      options.challenge = toBytes(options.challenge);
      options.user.id = toBytes(options.user.id);
      (options.excludeCredentials || []).forEach(function (item) { item.id = toBytes(item.id); });
      return navigator.credentials.create({ publicKey: options });
    }).then(function (credential) {
      return post("/account/passkeys", { credential: serialise(credential), name: nameInput ? nameInput.value : "" });
    }).then(function (result) {
      window.location.assign(result.redirect);
    }).catch(function (error) {
      say(status, "No passkey was added: " + error.message);
      button.disabled = false;
    });
  }

  function signIn(button) {
    var status = document.getElementById("passkey-status");
    button.disabled = true;
    say(status, "Follow your phone's prompt…");
    post("/sign-in/passkey/options").then(function (options) {
      options.challenge = toBytes(options.challenge);
      (options.allowCredentials || []).forEach(function (item) { item.id = toBytes(item.id); });
      return navigator.credentials.get({ publicKey: options });
    }).then(function (credential) {
      var next = new URLSearchParams(window.location.search).get("next");
      return post("/sign-in/passkey", { credential: serialise(credential), next: next });
    }).then(function (result) {
      window.location.assign(result.redirect);
    }).catch(function (error) {
      say(status, "Passkey sign-in did not work: " + error.message + " You can use your password instead.");
      button.disabled = false;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.PublicKeyCredential) return;
    var add = document.getElementById("passkey-add");
    var login = document.getElementById("passkey-sign-in");
    [add, login].forEach(function (button) { if (button) button.hidden = false; });
    if (add) add.addEventListener("click", function () { addPasskey(add); });
    if (login) login.addEventListener("click", function () { signIn(login); });
  });
})();
