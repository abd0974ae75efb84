// The operation page: the progress of the run in #active-run, polled from the JSON API
// (GET /api/matching-runs/{id}) once a second, without reloading the page; once the run
// has finished the page reloads to show its results. Its texts, in the page's language, come from
// the page (data-messages on #active-run: JSON, placeholders %(name)s).
(function () {
  "use strict";
  var box = document.getElementById("active-run");
  if (!box) { return; }
  var messages = {};
  try { messages = JSON.parse(box.getAttribute("data-messages") || "{}"); } catch (e) { messages = {}; }
  function t(key, vars) {
    var text = messages[key] || key;
    return text.replace(/%\((\w+)\)s|%%/g, function (all, name) {
      return name === undefined ? "%" : String(vars && name in vars ? vars[name] : all);
    });
  }
  function word(kind, value) { return messages[kind + "." + value] || value; }
  var id = box.getAttribute("data-run");
  var el = function (name) { return document.getElementById(name); };
  var polls = 0;
  function show(run) {
    el("run-status").textContent = word("status", run.status);
    el("run-phase").textContent = word("phase", run.phase);
    el("run-progress").value = run.progress;
    el("run-percent").textContent = t("percent", {value: Math.round(run.progress * 100)});
    if (run.error) { el("run-error").textContent = run.error; }
    if (run.skipped_families && run.skipped_families.length) {
      el("run-skipped").textContent = t("skipped", {num: run.skipped_families.length});
    }
  }
  function tick() {
    fetch("/api/matching-runs/" + encodeURIComponent(id), {credentials: "same-origin",
                                                           headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (run) {
        polls += 1;
        box.setAttribute("data-polls", String(polls));
        if (!run) { setTimeout(tick, 2000); return; }
        show(run);
        if (run.status === "queued" || run.status === "running") {
          setTimeout(tick, 1000);
        } else {
          box.setAttribute("data-done", run.status);
          if (run.status === "finished") { setTimeout(function () { window.location.reload(); }, 1500); }
        }
      })
      .catch(function () { setTimeout(tick, 2000); });
  }
  tick();
}());
