// The operation page: the progress of the run in #active-run, polled from the JSON API
// (GET /api/matching-runs/{id}) once a second, without reloading the page; once the run
// has finished the page reloads to show its results.
(function () {
  "use strict";
  var box = document.getElementById("active-run");
  if (!box) { return; }
  var id = box.getAttribute("data-run");
  var el = function (name) { return document.getElementById(name); };
  var polls = 0;
  function show(run) {
    el("run-status").textContent = run.status;
    el("run-phase").textContent = run.phase;
    el("run-progress").value = run.progress;
    el("run-percent").textContent = Math.round(run.progress * 100) + " %";
    if (run.error) { el("run-error").textContent = run.error; }
    if (run.skipped_families && run.skipped_families.length) {
      el("run-skipped").textContent = run.skipped_families.length + " families skipped";
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
