// Rempart console: keyboard navigation, selection and live updates. No framework, no eval,
// no inline handlers (the page's Content-Security-Policy allows this file only). Everything
// this script puts into the page is HTML the server rendered and escaped.
"use strict";
(function () {
  var cursor = -1;

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("tr.row"));
  }

  function mark(i) {
    var all = rows();
    if (all.length === 0) return;
    cursor = Math.max(0, Math.min(i, all.length - 1));
    all.forEach(function (r, n) { r.classList.toggle("cursor", n === cursor); });
    all[cursor].scrollIntoView({ block: "nearest" });
  }

  function typing(e) {
    var t = e.target;
    return t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA" || t.isContentEditable);
  }

  function countSelected() {
    var out = document.getElementById("selected-count");
    if (out) out.textContent = String(document.querySelectorAll("input[name=id]:checked").length);
  }

  document.addEventListener("keydown", function (e) {
    if (typing(e) || e.altKey || e.ctrlKey || e.metaKey) return;
    var all = rows();
    if (e.key === "j") { mark(cursor + 1); e.preventDefault(); }
    else if (e.key === "k") { mark(cursor - 1); e.preventDefault(); }
    else if (e.key === "Enter" && cursor >= 0 && all[cursor]) {
      var href = all[cursor].getAttribute("data-href");
      if (href && href.charAt(0) === "/") window.location.assign(href);
    } else if (e.key === "x" && cursor >= 0 && all[cursor]) {
      var box = all[cursor].querySelector("input[type=checkbox]");
      if (box) { box.checked = !box.checked; countSelected(); }
    }
  });

  document.addEventListener("change", function (e) {
    if (e.target && e.target.name === "id") countSelected();
  });

  // Live queue: the server says an incident changed; fetch the rows again, keep the selection.
  function live() {
    var badge = document.getElementById("live");
    var body = document.getElementById("rows");
    if (!badge || !body || typeof EventSource === "undefined") return;
    var url = badge.getAttribute("data-rows");
    var pending = null;
    var source = new EventSource("/live");
    function refresh() {
      pending = null;
      var checked = {};
      document.querySelectorAll("input[name=id]:checked").forEach(function (b) { checked[b.value] = true; });
      var at = cursor >= 0 && rows()[cursor] ? rows()[cursor].getAttribute("data-id") : null;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.text(); })
        .then(function (html) {
          body.innerHTML = html;
          document.querySelectorAll("input[name=id]").forEach(function (b) { if (checked[b.value]) b.checked = true; });
          var total = document.getElementById("total");
          if (total) total.textContent = String(document.querySelectorAll("#rows tr.row").length);
          countSelected();
          if (at) rows().forEach(function (r, n) { if (r.getAttribute("data-id") === at) mark(n); });
          badge.setAttribute("data-updated", String(Date.now()));
        })
        .catch(function () { badge.classList.add("stale"); });
    }
    source.addEventListener("open", function () { badge.classList.add("on"); badge.classList.remove("stale"); });
    source.addEventListener("error", function () { badge.classList.remove("on"); });
    source.addEventListener("incident", function () {
      if (pending === null) pending = window.setTimeout(refresh, 250);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    live();
    countSelected();
  });
})();
