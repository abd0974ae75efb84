// The families page: each family's power panel (#power-FAMILY, class "power-panel"), filled from
// the JSON API (GET /api/power/families/{code}) once the panel scrolls into view, one family at
// a time, so that the page itself renders at once and power is computed only for families seen.
// Same origin: the Content-Security-Policy allows no inline script. Its texts, in the page's
// language, come from the page (data-messages on its <script>: JSON, placeholders %(name)s),
// its numbers are written by the page's locale (<html lang>).
(function () {
  "use strict";
  var queue = [];
  var busy = false;
  var lang = document.documentElement.lang || "en";
  var script = document.getElementById("power-panel-script");
  var messages = {};
  try { messages = JSON.parse(script.getAttribute("data-messages") || "{}"); } catch (e) { messages = {}; }
  function t(key, vars) {
    var text = messages[key] || key;
    return text.replace(/%\((\w+)\)s|%%/g, function (all, name) {
      return name === undefined ? "%" : String(vars && name in vars ? vars[name] : all);
    });
  }
  function fixed(x, digits) {
    return Number(x).toLocaleString(lang, {minimumFractionDigits: digits, maximumFractionDigits: digits});
  }
  function pct(x) { return t("percent", {value: fixed(100 * x, 1)}); }
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
      add(box, "p", t("summary", {missing: r.missing, ip: ip === null ? "-" : pct(ip),
                                  ep: fixed(r.exclusion.total, 4), e: fixed(r.lr.e_log10_lr, 2),
                                  method: messages["method." + r.method] || r.method}), "power-summary");
      Object.keys(r.lineage || {}).forEach(function (sys) {  // Y-STR / mtDNA terms, in the totals above
        var l = r.lineage[sys];
        add(box, "p", t("lineage", {system: sys, reference: l.reference, links: l.links,
                                    e: fixed(l.e_log10_lr, 2)}), "power-lineage");
      });
      if (r.next && r.next.length) {
        var best = r.next[0];
        add(box, "p", t("next", {candidate: best.candidate, ip: pct(best.inclusion["1e4"]),
                                 e: fixed(best.e_log10_lr, 2)}), "power-next ok");
        Object.keys(best.lineage || {}).forEach(function (sys) {
          add(box, "p", t("next_lineage", {system: sys, e: fixed(best.lineage[sys].e_log10_lr, 2)}), "power-lineage");
        });
      } else {
        add(box, "p", t("none"), "power-next");
      }
      var img = add(box, "img", null, "power-plot");
      img.alt = t("plot_alt", {missing: r.missing});
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
        var msg = (res.body && res.body.error && res.body.error.message) || t("failed");
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
