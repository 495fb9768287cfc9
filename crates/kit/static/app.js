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

  // Scan a code with the camera where the browser can read QR codes or barcodes
  // (BarcodeDetector, or the decoder a page loads as window.jsQR): a button
  // data-scan="INPUT_ID" data-scan-video="VIDEO_ID" fills the input, and with
  // data-scan-submit sends its form.
  var scanButtons = document.querySelectorAll("button[data-scan]");
  scanButtons.forEach(function (scan) {
    var video = document.getElementById(scan.dataset.scanVideo);
    var input = document.getElementById(scan.dataset.scan);
    var native = "BarcodeDetector" in window;
    if (!video || !input || !navigator.mediaDevices || !(native || window.jsQR)) { return; }
    scan.hidden = false;
    var found = function (text) {
      input.value = text;
      if (scan.hasAttribute("data-scan-submit") && input.form) { input.form.submit(); } else { input.focus(); }
    };
    scan.addEventListener("click", function () {
      var detector = native ? new window.BarcodeDetector() : null;
      var canvas = document.createElement("canvas");
      var read = function () {
        if (detector) {
          return detector.detect(video).then(function (codes) { return codes.length > 0 ? codes[0].rawValue : null; });
        }
        var w = video.videoWidth, h = video.videoHeight;
        if (!w || !h) { return Promise.resolve(null); }
        canvas.width = w; canvas.height = h;
        var ctx = canvas.getContext("2d");
        ctx.drawImage(video, 0, 0, w, h);
        var hit = window.jsQR(ctx.getImageData(0, 0, w, h).data, w, h);
        return Promise.resolve(hit ? hit.data : null);
      };
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
        video.hidden = false;
        video.srcObject = stream;
        video.play();
        var stop = function () { stream.getTracks().forEach(function (t) { t.stop(); }); video.hidden = true; };
        var look = function () {
          read().then(function (text) {
            if (text) { stop(); found(text); } else { window.requestAnimationFrame(look); }
          }).catch(function () { window.requestAnimationFrame(look); });
        };
        look();
      }).catch(function () { scan.hidden = true; });
    });
  });

  // Copy a link, and share it where the browser can (the Web Share API).
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    if (!navigator.clipboard) { return; }
    b.hidden = false;
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(b.dataset.copy).then(function () { b.textContent = b.dataset.copied; });
    });
  });
  document.querySelectorAll("button[data-share]").forEach(function (b) {
    if (!navigator.share) { return; }
    b.hidden = false;
    b.addEventListener("click", function () {
      navigator.share({ title: b.dataset.shareTitle, url: b.dataset.share }).catch(function () {});
    });
  });

  // Print buttons (the receiving page's QR code).
  document.querySelectorAll("button[data-print]").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () { window.print(); });
  });

  // A shop's receiving page: today's payments arrive while the page is open.
  var feed = document.querySelector("[data-feed]");
  if (feed && window.fetch) {
    var list = document.getElementById("received");
    var total = document.getElementById("receive-total");
    var count = document.getElementById("receive-count");
    var empty = document.getElementById("receive-empty");
    var poll = function () {
      window.fetch(feed.dataset.feed, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (a) {
          if (!a) { return; }
          total.textContent = a.total;
          count.textContent = a.count;
          empty.hidden = a.items.length > 0;
          var seen = {};
          list.querySelectorAll("li[data-id]").forEach(function (li) { seen[li.dataset.id] = true; });
          a.items.slice().reverse().forEach(function (i) {
            if (seen[i.id]) { return; }
            var li = document.createElement("li");
            li.className = "card arrived";
            li.dataset.id = i.id;
            var top = document.createElement("div");
            top.className = "row-between";
            var from = document.createElement("strong");
            from.textContent = i.from;
            var amount = document.createElement("span");
            amount.className = "num in";
            amount.textContent = i.amount;
            top.appendChild(from); top.appendChild(amount);
            var what = document.createElement("div");
            what.className = "muted";
            what.textContent = i.what + " · " + i.at;
            li.appendChild(top); li.appendChild(what);
            list.insertBefore(li, list.firstChild);
          });
        })
        .catch(function () {});
    };
    window.setInterval(poll, 3000);
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
