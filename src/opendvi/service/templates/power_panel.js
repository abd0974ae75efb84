// The families page: each family's power panel (#power-FAMILY, class "power-panel"), filled from
// the JSON API (GET /api/power/families/{code}) once the panel scrolls into view, one family at
// a time, so that the page itself renders at once and power is computed only for families seen.
// Same origin: the Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  var queue = [];
  var busy = false;
  function pct(x) { return (100 * x).toFixed(1) + " %"; }
  function add(parent, tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = text; }
    if (cls) { e.className = cls; }
    parent.appendChild(e);
    return e;
  }
  function show(panel, results) {
    var body = panel.querySelector(".power-body");
    body.textContent = "";
    results.forEach(function (r) {
      var box = add(body, "div", null, "power-result");
      box.setAttribute("data-missing", r.missing);
      var ip = r.inclusion ? r.inclusion["1e4"] : null;
      add(box, "p", "Missing person " + r.missing + ": P(LR ≥ 10⁴) " + (ip === null ? "-" : pct(ip)) +
          " · exclusion power " + Number(r.exclusion.total).toFixed(4) +
          " · E[log10 LR] " + Number(r.lr.e_log10_lr).toFixed(2) + " · method " + r.method, "power-summary");
      if (r.next && r.next.length) {
        var best = r.next[0];
        add(box, "p", "Suggested next sample: " + best.candidate + " (expected P(LR ≥ 10⁴) " +
            pct(best.inclusion["1e4"]) + ", E[log10 LR] " + Number(best.e_log10_lr).toFixed(2) + ")",
            "power-next ok");
      } else {
        add(box, "p", "No untyped relative to suggest.", "power-next");
      }
      var img = add(box, "img", null, "power-plot");
      img.alt = "distribution of log10 LR of the true missing person " + r.missing;
      img.width = 560;
      img.height = 256;
      img.src = panel.getAttribute("data-plot") + "?missing=" + encodeURIComponent(r.missing);
    });
    panel.setAttribute("data-state", "done");
  }
  function next() {
    if (busy || !queue.length) { return; }
    busy = true;
    var panel = queue.shift();
    panel.setAttribute("data-state", "loading");
    fetch(panel.getAttribute("data-api"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) {
        return r.json().then(function (body) { return {ok: r.ok, body: body}; });
      })
      .then(function (res) {
        if (res.ok) { show(panel, res.body); return; }
        var msg = (res.body && res.body.error && res.body.error.message) || "power cannot be computed";
        var body = panel.querySelector(".power-body");
        body.textContent = "";
        add(body, "p", msg, "error");
        panel.setAttribute("data-state", "error");
      })
      .catch(function () { panel.setAttribute("data-state", "error"); })
      .then(function () { busy = false; next(); });
  }
  function want(panel) {
    if (panel.getAttribute("data-state") !== "idle") { return; }
    panel.setAttribute("data-state", "queued");
    queue.push(panel);
    next();
  }
  var panels = Array.prototype.slice.call(document.querySelectorAll(".power-panel"));
  if (!("IntersectionObserver" in window)) { panels.forEach(want); return; }
  var seen = new IntersectionObserver(function (entries) {
    entries.forEach(function (e) {
      if (e.isIntersecting) { seen.unobserve(e.target); want(e.target); }
    });
  });
  panels.forEach(function (p) { seen.observe(p); });
}());
