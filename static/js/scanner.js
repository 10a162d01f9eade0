// The in-app label scanner: the camera (getUserMedia) and jsQR where the browser allows it, and the
// type-the-tag form always. Mode "open" goes to the scanned asset's page; mode "stocktake" records each
// label through the JSON API and shows it at once. Everything shown is set with textContent.
(function () {
  "use strict";

  var SAME_TAG_PAUSE_MS = 2500;

  function tagFromText(text) {
    // A Lanyard label holds <base URL>/t/<tag>; a typed tag is taken as it is.
    var value = (text || "").trim();
    var at = value.lastIndexOf("/t/");
    if (at !== -1) {
      value = value.slice(at + 3).split(/[?#/]/)[0];
      try { value = decodeURIComponent(value); } catch { return ""; }
    } else if (/^https?:/i.test(value)) {
      return "";
    }
    value = value.toUpperCase();
    return /^[A-Z0-9][A-Z0-9-]{0,39}$/.test(value) ? value : "";
  }

  // A door poster holds <this site's base URL>/a/<token>. Only this site's posters are opened, and always
  // on this origin: a code pointing anywhere else is refused, never followed.
  function posterPathFromText(text, baseUrl) {
    var url;
    try { url = new URL((text || "").trim()); } catch { return ""; }
    var origins = [window.location.origin];
    try { if (baseUrl) origins.push(new URL(baseUrl).origin); } catch { /* no base URL: this origin only */ }
    if (origins.indexOf(url.origin) === -1) return "";
    var match = /^\/a\/([A-Za-z0-9_-]{1,64})$/.exec(url.pathname);
    return match ? "/a/" + match[1] : "";
  }

  function say(element, text) {
    if (element) element.textContent = text;
  }

  function Recorder(stocktakeId) {
    this.id = stocktakeId;
    this.list = document.getElementById("scan-list");
    this.message = document.getElementById("scan-message");
  }

  Recorder.prototype.record = function (tag) {
    var self = this;
    return window.lanyardApi("/stocktakes/" + encodeURIComponent(self.id) + "/scans", {
      method: "POST",
      body: { tag: tag }
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (result) {
      if (!result.ok) {
        say(self.message, (result.body && (result.body.detail || result.body.title)) || "That label could not be recorded.");
        return;
      }
      var body = result.body;
      say(self.message, body.message);
      if (body.created && self.list) {
        var item = document.createElement("li");
        item.className = body.expected ? "scan-ok" : "scan-unexpected";
        var tagEl = document.createElement("span");
        tagEl.className = "tag";
        tagEl.textContent = body.scan.tag;
        item.appendChild(tagEl);
        var name = body.scan.asset ? body.scan.asset.name : "unknown tag";
        item.appendChild(document.createTextNode(" " + name + (body.expected ? "" : " (not expected here)")));
        self.list.insertBefore(item, self.list.firstChild);
      }
      ["found", "expected", "unexpected", "unknown"].forEach(function (name) {
        var counter = document.getElementById(name + "-count");
        if (counter && typeof body[name + "_count"] === "number") counter.textContent = String(body[name + "_count"]);
      });
      if (navigator.vibrate) navigator.vibrate(body.created ? 60 : [30, 40, 30]);
    });
  };

  function startCamera(panel, onTag, decode, notOurs, pointAt) {
    var video = panel.querySelector(".scanner-video");
    var state = panel.querySelector(".scanner-state");
    var canvas = document.createElement("canvas");
    var context = canvas.getContext("2d", { willReadFrequently: true });
    var stream = null;
    var running = false;
    var lastTag = "";
    var lastAt = 0;

    function stop() {
      running = false;
      if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
      stream = null;
      panel.hidden = true;
      var start = document.querySelector(".scanner-start");
      if (start) start.hidden = false;
    }

    function tick() {
      if (!running) return;
      if (video.readyState === video.HAVE_ENOUGH_DATA && video.videoWidth) {
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        context.drawImage(video, 0, 0, canvas.width, canvas.height);
        var image = context.getImageData(0, 0, canvas.width, canvas.height);
        var code = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
        if (code && code.data) {
          var tag = decode(code.data);
          var now = Date.now();
          if (!tag) {
            say(state, notOurs);
          } else if (tag !== lastTag || now - lastAt > SAME_TAG_PAUSE_MS) {
            lastTag = tag;
            lastAt = now;
            say(state, "Read " + tag);
            if (onTag(tag, stop) === false) return;
          }
        }
      }
      window.requestAnimationFrame(tick);
    }

    panel.hidden = false;
    say(state, "Starting the camera…");
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (media) {
        stream = media;
        video.srcObject = media;
        return video.play();
      })
      .then(function () {
        running = true;
        say(state, pointAt);
        window.requestAnimationFrame(tick);
      })
      .catch(function () {
        say(state, panel.getAttribute("data-no-camera") || "The camera is not available here. Type the tag instead.");
        stop();
        panel.hidden = false;
      });
    return stop;
  }

  function setUp() {
    var panel = document.querySelector(".scanner");
    var startButton = document.querySelector(".scanner-start");
    var form = document.querySelector("form.tag-entry[data-stocktake-id]");
    var recorder = null;
    if (form) {
      recorder = new Recorder(form.getAttribute("data-stocktake-id"));
      form.addEventListener("submit", function (event) {
        var input = form.querySelector("input[name=tag]");
        var tag = tagFromText(input.value);
        if (!tag || !window.lanyardApi) return; // let the server explain what is wrong
        event.preventDefault();
        recorder.record(tag).then(function () {
          input.value = "";
          input.focus();
        }).catch(function () { form.submit(); });
      });
    }
    var cameraPossible = panel && startButton && window.jsQR && navigator.mediaDevices && navigator.mediaDevices.getUserMedia;
    if (!cameraPossible) return;
    startButton.hidden = false;
    var stop = null;
    var poster = panel.getAttribute("data-scanner") === "poster";
    startButton.addEventListener("click", function () {
      startButton.hidden = true;
      if (poster) {
        stop = startCamera(panel, function (path, stopCamera) {
          stopCamera();
          window.location.assign(window.location.origin + path);
          return false;
        }, function (text) { return posterPathFromText(text, panel.getAttribute("data-base-url")); },
        "That code is not one of this school's Lanyard door posters, so it was not opened.",
        "Point the camera at the QR code on the door poster.");
        return;
      }
      stop = startCamera(panel, function (tag, stopCamera) {
        if (panel.getAttribute("data-scanner") === "open") {
          stopCamera();
          window.location.assign("/t/" + encodeURIComponent(tag));
          return false;
        }
        if (recorder) recorder.record(tag);
        return true;
      }, tagFromText, "That code is not a Lanyard label.", "Point the camera at a label.");
    });
    var stopButton = panel.querySelector(".scanner-stop");
    if (stopButton) stopButton.addEventListener("click", function () { if (stop) stop(); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
