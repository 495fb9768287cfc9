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

  // Forms that change something a person may not mean to: ask first.
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.dataset.confirm)) { e.preventDefault(); }
    });
  });

  // Scan a code with the camera or from a photo: BarcodeDetector where the
  // browser has it, else the decoder named by data-decoder (loaded on first
  // need). A button data-scan="INPUT_ID" data-scan-video="VIDEO_ID", or a file
  // input data-scan-photo="INPUT_ID", fills the input, and with
  // data-scan-submit sends its form.
  var native = "BarcodeDetector" in window;
  var decoderLoading = null;
  var decoder = function (url) {
    if (native || window.jsQR) { return Promise.resolve(); }
    if (!url) { return Promise.reject(new Error("no decoder")); }
    if (!decoderLoading) {
      decoderLoading = new Promise(function (ok, fail) {
        var s = document.createElement("script");
        s.src = url;
        s.onload = function () { if (window.jsQR) { ok(); } else { fail(new Error("no decoder")); } };
        s.onerror = fail;
        document.head.appendChild(s);
      });
    }
    return decoderLoading;
  };
  var canvas = document.createElement("canvas");
  var decode = function (source, w, h) {
    if (native) {
      return new window.BarcodeDetector().detect(source).then(function (c) { return c.length > 0 ? c[0].rawValue : null; });
    }
    if (!w || !h) { return Promise.resolve(null); }
    canvas.width = w; canvas.height = h;
    var ctx = canvas.getContext("2d");
    ctx.drawImage(source, 0, 0, w, h);
    var hit = window.jsQR(ctx.getImageData(0, 0, w, h).data, w, h);
    return Promise.resolve(hit ? hit.data : null);
  };
  var fill = function (el, text) {
    var input = document.getElementById(el.dataset.scan || el.dataset.scanPhoto);
    if (!input) { return; }
    input.value = text;
    if (el.hasAttribute("data-scan-submit") && input.form) { input.form.submit(); } else { input.focus(); }
  };
  document.querySelectorAll("button[data-scan]").forEach(function (scan) {
    var video = document.getElementById(scan.dataset.scanVideo);
    if (!video || !navigator.mediaDevices) { return; }
    decoder(scan.dataset.decoder).then(function () {
      scan.hidden = false;
      scan.addEventListener("click", function () {
        navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
          video.hidden = false;
          video.srcObject = stream;
          video.play();
          var stop = function () { stream.getTracks().forEach(function (t) { t.stop(); }); video.hidden = true; };
          var look = function () {
            decode(video, video.videoWidth, video.videoHeight).then(function (text) {
              if (text) { stop(); fill(scan, text); } else { window.requestAnimationFrame(look); }
            }).catch(function () { window.requestAnimationFrame(look); });
          };
          look();
        }).catch(function () { scan.hidden = true; });
      });
    }).catch(function () {});
  });
  document.querySelectorAll("input[data-scan-photo]").forEach(function (photo) {
    var label = photo.closest("label");
    decoder(photo.dataset.decoder).then(function () {
      if (label) { label.hidden = false; }
      photo.addEventListener("change", function () {
        var file = photo.files && photo.files[0];
        if (!file) { return; }
        var img = new Image();
        img.onload = function () {
          // A phone photo is large: a QR code reads as well at 1000 pixels across.
          var scale = Math.min(1, 1000 / Math.max(img.naturalWidth, img.naturalHeight));
          decode(img, Math.round(img.naturalWidth * scale), Math.round(img.naturalHeight * scale)).then(function (text) {
            URL.revokeObjectURL(img.src);
            if (text) { fill(photo, text); } else if (label) { label.classList.add("late"); }
          });
        };
        img.src = URL.createObjectURL(file);
      });
    }).catch(function () {});
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
