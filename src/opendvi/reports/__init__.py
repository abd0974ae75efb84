"""What the service gives people to read and to take away: the evidence of a match, the
identification report (printable HTML and PDF), exports (CSV, Excel, JSON lines) and plots.

Built on the store and the engine, used by the web pages, the API and the CLI; no HTTP here.
"""
