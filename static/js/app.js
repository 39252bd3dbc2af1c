// Aisle Keys: small progressive enhancements (no inline script: CSP).
// - <time data-local-time>: shown in the browser's own time zone (the title keeps UTC).
// - [data-expires-at]: a countdown to a token's expiry that ticks every second.
// Both re-run after htmx swaps a card in (htmx:afterSwap), so swapped cards tick too, and the
// new card's outcome is announced (#announcer).
(function () {
  "use strict";

  var timeFormat = null;
  try {
    timeFormat = new Intl.DateTimeFormat(undefined, {
      year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", timeZoneName: "short"
    });
  } catch (e) {
    timeFormat = null;
  }

  function localTimes(root) {
    if (!timeFormat) return;
    root.querySelectorAll("time[data-local-time]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when.getTime())) el.textContent = timeFormat.format(when);
    });
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function remaining(ms) {
    var s = Math.floor(ms / 1000);
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var parts = [];
    if (h > 0) parts.push(h + " h");
    parts.push((h > 0 ? pad(m) : m) + " min");
    parts.push(pad(s % 60) + " s");
    return parts.join(" ") + " left";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-expires-at]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("data-expires-at"));
      if (isNaN(at)) return;
      var left = at - now;
      if (left <= 0) {
        if (!el.classList.contains("expired")) {
          el.classList.add("expired");
          el.textContent = "expired";
        }
        return;
      }
      el.textContent = remaining(left);
    });
  }

  function init(root) {
    localTimes(root || document);
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () {
    init(document);
    window.setInterval(tick, 1000);
  });

  // Read the outcome of a swapped-in card out through #announcer (base.html), which stays on
  // the page: the card is a new element after every swap, and screen readers announce changes
  // only inside a live region that was already there. The card's outcome is not a live region
  // of its own, so it is announced once, here.
  function announce(card) {
    var region = document.getElementById("announcer");
    var outcome = card.querySelector(".last-check");
    if (!region || !outcome) return;
    var row = card.closest(".integration-row");
    var parts = [
      row ? row.querySelector("h2") : null,
      card.querySelector(".card-header h2, .card-header h3"),
      outcome
    ];
    region.textContent = parts.filter(Boolean).map(function (el) {
      return el.textContent.replace(/\s+/g, " ").trim();
    }).join(": ");
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.elt ? event.detail.elt : document;
    // With outerHTML the old element is gone; the new card is in the document under its id.
    init(target.isConnected ? target : document);
    // After init, so the announced time is the one shown (the browser's zone).
    if (target.isConnected && target.classList && target.classList.contains("env-card")) {
      announce(target);
    }
  });

  // Seen as well as heard: a check answered in milliseconds left a card that looked as before
  // (same minute, same outcome), so a second click seemed to do nothing. After settling: htmx
  // puts the new card's own attributes back when it settles, which would drop a class added on
  // afterSwap. The card is a new element each time, so the highlight plays once (CSS).
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.elt;
    if (target && target.isConnected && target.classList.contains("env-card")) {
      target.classList.add("just-updated");
    }
  });

  // Keyboard focus across a swap. htmx refocuses the element with the id that had focus, but
  // the card's buttons are disabled while the request runs (hx-disabled-elt) and Chromium then
  // moves focus to <body>, so a keyboard user would start again from the top of the page.
  // Remember the focused button before the request; when it is over (swapped or failed, the
  // buttons enabled again) and focus is on <body>, put it back on the button with that id
  // (the cards keep their buttons' ids), or else on the first button of the same card.
  var focusBefore = null;
  document.addEventListener("htmx:beforeRequest", function () {
    var active = document.activeElement;
    var card = active && active.closest ? active.closest(".env-card") : null;
    focusBefore = card && active.id ? { id: active.id, card: card.id } : null;
  });
  document.addEventListener("htmx:afterRequest", function () {
    var remembered = focusBefore;
    var active = document.activeElement;
    if (!remembered || (active && active !== document.body)) return;
    focusBefore = null;
    var target = document.getElementById(remembered.id);
    if (!target || target.disabled) {
      var card = document.getElementById(remembered.card);
      target = card ? card.querySelector("button:not([disabled])") : null;
    }
    if (target) target.focus();
  });

  // The refusal's own sentence from an error page (templates/403.html, 403_csrf.html mark it
  // with data-refusal): not every 403 is a missing right. A stale form token (the user signed
  // in again in another tab) needs a reload, which "You may not do this" would never suggest.
  // The page is parsed inert (DOMParser runs no script) and only its text is used.
  function refusal(xhr) {
    if (!xhr || !xhr.responseText || !window.DOMParser) return "";
    try {
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var el = doc.querySelector("[data-refusal]");
      if (!el) return "";
      var text = el.getAttribute("data-refusal") || el.textContent || "";
      text = text.replace(/\s+/g, " ").trim();
      return text.length <= 500 ? text : "";
    } catch (e) {
      return "";
    }
  }

  // A refused or failed request (403, 404, 500) is not swapped by htmx: say so in the card.
  // .env-card is on both the integration page's cards and the overview's compact cells
  // (article.env-card.env-cell, which are not .card).
  function showError(event) {
    var elt = event.detail && event.detail.elt;
    var card = elt && elt.closest ? elt.closest(".env-card") : null;
    var slot = card ? card.querySelector(".card-error") : null;
    if (!slot) return;
    var xhr = event.detail.xhr;
    var status = xhr ? xhr.status : 0;
    var p = document.createElement("p");
    p.className = "error";
    p.textContent = (status && refusal(xhr))
      || (status === 403 ? "You may not do this (HTTP 403)."
        : status ? "The request failed (HTTP " + status + "). Reload the page and try again."
        : "The dashboard could not be reached. Check your connection and try again.");
    slot.replaceChildren(p);
  }
  document.addEventListener("htmx:responseError", showError);
  document.addEventListener("htmx:sendError", showError);
})();
