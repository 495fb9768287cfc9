// Progressive enhancement only: every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Forms that move money: disable the button after the first press so a double tap sends one request
  // (the hidden idempotency key makes a second request harmless anyway).
  document.querySelectorAll("form[data-once]").forEach(function (f) {
    f.addEventListener("submit", function () {
      f.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
    });
  });

  // Scan a payment code with the camera where the browser can read QR codes.
  var scan = document.getElementById("scan");
  var video = document.getElementById("scan-video");
  var payload = document.getElementById("payload");
  if (scan && video && payload && "BarcodeDetector" in window && navigator.mediaDevices) {
    scan.hidden = false;
    scan.addEventListener("click", function () {
      var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
        video.hidden = false;
        video.srcObject = stream;
        video.play();
        var stop = function () { stream.getTracks().forEach(function (t) { t.stop(); }); video.hidden = true; };
        var look = function () {
          detector.detect(video).then(function (codes) {
            if (codes.length > 0) {
              stop();
              payload.value = codes[0].rawValue;
              payload.form.submit();
            } else {
              window.requestAnimationFrame(look);
            }
          }).catch(function () { window.requestAnimationFrame(look); });
        };
        look();
      }).catch(function () { scan.hidden = true; });
    });
  }

  // The pay code counts down and renews itself when it expires.
  var code = document.getElementById("paycode");
  var ttl = document.getElementById("paycode-ttl");
  if (code && ttl) {
    var left = parseInt(code.dataset.expiresIn, 10) || 0;
    var stateUrl = code.dataset.stateUrl;
    var statusUrl = code.dataset.statusUrl;
    var moved = false;
    // Once a cashier has charged it, the page that shows how it stands takes over
    // (a charge above the threshold waits there for the person to confirm).
    var ask = function () {
      if (!stateUrl || !window.fetch) { return Promise.resolve("waiting"); }
      return window.fetch(stateUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { state: "waiting" }; })
        .then(function (a) { return a.state; })
        .catch(function () { return "waiting"; });
    };
    var timer = window.setInterval(function () {
      left -= 1;
      ttl.textContent = String(Math.max(left, 0));
      if (left % 2 === 0 || left <= 0) {
        ask().then(function (state) {
          if (moved) { return; }
          if (state !== "waiting" && statusUrl) {
            moved = true; window.clearInterval(timer); window.location.assign(statusUrl);
          } else if (left <= 0) {
            moved = true; window.clearInterval(timer); window.location.reload();
          }
        });
      }
    }, 1000);
  }
});
