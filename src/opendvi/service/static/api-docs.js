// Starts Swagger UI or ReDoc on /api/docs and /api/redoc (routes/docs.py): a served file, since the
// Content-Security-Policy allows no inline script. Everything it loads comes from this server.
(function () {
  "use strict";
  function start() {
    var el = document.getElementById("api-docs");
    if (!el) { return; }
    var url = el.getAttribute("data-openapi");
    var loading = document.getElementById("api-docs-loading");
    if (el.getAttribute("data-viewer") === "swagger") {
      window.ui = window.SwaggerUIBundle({
        url: url,
        domNode: el,
        deepLinking: false,            // a deep link inside each operation's button is a nested control (axe)
        validatorUrl: null,            // no badge fetched from validator.swagger.io
        presets: [window.SwaggerUIBundle.presets.apis],
        layout: "BaseLayout",
        onComplete: function () { if (loading) { loading.remove(); } el.setAttribute("data-ready", "1"); }
      });
    } else {
      window.Redoc.init(url, {
        hideDownloadButton: false,
        theme: {colors: {primary: {main: "#23395b"}}}
      }, el, function () { if (loading) { loading.remove(); } el.setAttribute("data-ready", "1"); });
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
