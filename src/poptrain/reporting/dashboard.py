"""A live local web page over a storage URL.

The server is the standard library's ``ThreadingHTTPServer``: the page is
read-only, has one or a few viewers on the same machine, and refreshes every
couple of seconds, so a polled JSON endpoint is all it needs, and a
dependency-free server starts anywhere poptrain is installed (including a
cluster's login node). Server-sent events would only save a request every
two seconds.

Routes:
    ``/``              the page (plotly.js is served from the installed package,
                       nothing is fetched from the internet)
    ``/plotly.js``     plotly.js
    ``/api/data``      the current figures, tables and counts as JSON
                       (``?since=VERSION``: a short "unchanged" answer when nothing moved)
    ``/healthz``       ``ok``

The page shows the storage URL with any password masked. Bound to a
loopback address (the default), the server answers only requests addressed
to a loopback host name, so a web page elsewhere cannot read it through DNS
rebinding.
"""

from __future__ import annotations

import errno
import hashlib
import html
import json
import threading
import time
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from poptrain.errors import ConfigError, PoptrainError
from poptrain.reporting.data import field_of, population
from poptrain.reporting.diversity import diversity
from poptrain.reporting.figures import all_figures, nan_free
from poptrain.reporting.report import FIGURE_TITLES, plotly_js
from poptrain.reporting.tables import html_table, member_rows, schedule_rows

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def mask(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    from poptrain.storage import mask_url

    return mask_url(url)


class DataSource:
    """Reads the experiment from storage at most once per ``min_interval_s`` and builds the payload.

    Args:
        load: returns the current ``Result`` (e.g. ``lambda: load_result(url, name)``).
        label: what the page shows as the data's origin (a masked URL).
    """

    def __init__(self, load: Callable[[], Any], *, label: str, min_interval_s: float = 1.0) -> None:
        self._load = load
        self.label = label
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._cached: bytes | None = None
        self._last_good: dict[str, Any] | None = None
        self._version: str | None = None
        self._cost = 0.0
        self._at = 0.0

    def payload(self, since: str | None = None) -> bytes:
        """The payload as JSON; only ``{"unchanged": true, ...}`` when it is still version ``since``.

        Reads storage at most once per ``min_interval_s``, and never more
        often than twice the time the last read took, so a large population
        does not keep a core busy.
        """
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._at >= max(self.min_interval_s, 2 * self._cost):
                payload = self.build()
                self._cost = time.monotonic() - now
                self._cached = json.dumps(payload, allow_nan=False).encode("utf-8")
                self._version = payload.get("version") if payload.get("ok") else None
                self._at = now
            if since and since == self._version:
                return json.dumps({"ok": True, "unchanged": True, "version": since}).encode("utf-8")
            return self._cached

    def build(self) -> dict[str, Any]:
        """The payload now; a read that fails mid-run keeps showing the last good one, marked stale."""
        try:
            payload = self._build()
        except Exception as exc:  # a busy or briefly unreachable database must not kill the page
            message = f"cannot read the storage right now ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            if self._last_good is not None:
                return dict(self._last_good, warning=message, time=time.time())
            return {"ok": False, "message": message, "storage": self.label, "time": time.time()}
        if payload.get("ok"):
            self._last_good = payload
        return payload

    def _build(self) -> dict[str, Any]:
        try:
            result = self._load()
            pop = population(result)
        except PoptrainError as exc:
            return {"ok": False, "message": str(exc), "storage": self.label, "time": time.time()}
        div = diversity(pop)
        figures = nan_free(all_figures(pop, div))
        for fig in figures.values():
            fig["layout"]["uirevision"] = "keep"  # keep the viewer's zoom across refreshes
        steps = sum(int(m.get("step") or 0) for m in pop.members)
        best = pop.best or {}
        status = field_of(result, "status")
        version = hashlib.sha1(
            f"{len(pop.history)}|{len(pop.segments)}|{status}|{steps}".encode()).hexdigest()[:16]
        return {
            "ok": True,
            "version": version,
            "time": time.time(),
            "storage": self.label,
            "experiment": pop.name,
            "status": status,
            "metric": pop.metric,
            "mode": pop.mode,
            "counts": {"members": len(pop.members), "exploits": len(pop.lineage), "steps": steps,
                       "budget": int(pop.experiment.get("budget") or 0) * max(1, len(pop.members))},
            "best": {"member": best.get("member"), "score": best.get("score"), "step": best.get("step")},
            "figures": figures,
            "members_html": html_table(member_rows(pop), table_id="members-table",
                                       highlight=best.get("member")),
            "schedule_html": html_table(schedule_rows(pop), table_id="schedule-table", key="",
                                        empty="no best member yet"),
        }


_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>poptrain dashboard</title>
<link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1280px;padding:0 24px 48px;color:#222}
h1{font-size:1.5em;margin:20px 0 4px} h2{font-size:1.2em;margin:28px 0 6px;border-bottom:1px solid #ddd}
#status{color:#555} #message{background:#fff4cc;padding:8px 12px;display:none;margin:8px 0}
.figure{width:100%;min-height:340px}
table{border-collapse:collapse;font-size:13px;display:block;overflow-x:auto;max-height:480px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f4f4f4;position:sticky;top:0} tr.best td{background:#fff4cc;font-weight:600}
</style>
<script src="/plotly.js"></script></head><body data-members="0" data-exploits="0" data-version="">
<h1>poptrain dashboard — <span id="experiment">__EXPERIMENT__</span></h1>
<p id="status">connecting to __STORAGE__ …</p>
<div id="message"></div>
__SECTIONS__
<script>
var POLL_MS = __POLL_MS__;
function fmt(x){ return (typeof x === 'number') ? x.toPrecision(6).replace(/\\.?0+$/, '') : String(x); }
function draw(data){
  var body = document.body, msg = document.getElementById('message');
  if (data.unchanged) return;
  if (!data.ok) {
    msg.style.display = 'block'; msg.textContent = data.message;
    document.getElementById('status').textContent = 'waiting · ' + data.storage;
    return;
  }
  msg.style.display = 'none';
  document.getElementById('experiment').textContent = data.experiment;
  var c = data.counts, b = data.best;
  var line = data.status + ' · ' + c.members + ' members · ' + c.steps + ' / ' + c.budget + ' steps · '
      + c.exploits + ' exploits';
  if (b.member !== null && b.member !== undefined)
    line += ' · best: member ' + b.member + ', ' + data.metric + ' ' + fmt(b.score) + ' at step ' + b.step;
  document.getElementById('status').textContent = line + ' · ' + data.storage
      + ' · updated ' + new Date(data.time * 1000).toLocaleTimeString()
      + (data.warning ? ' · stale: ' + data.warning : '');
  if (body.dataset.version === data.version) return;
  Object.keys(data.figures).forEach(function(name){
    var el = document.getElementById('fig-' + name);
    if (el) Plotly.react(el, data.figures[name].data, data.figures[name].layout,
                         {responsive: true, displaylogo: false});
  });
  document.getElementById('members-slot').innerHTML = data.members_html;
  document.getElementById('schedule-slot').innerHTML = data.schedule_html;
  body.dataset.members = c.members; body.dataset.exploits = c.exploits;
  body.dataset.steps = c.steps; body.dataset.status = data.status; body.dataset.version = data.version;
}
function poll(){
  var since = document.body.dataset.version ? '?since=' + encodeURIComponent(document.body.dataset.version) : '';
  fetch('/api/data' + since, {cache: 'no-store'}).then(function(r){ return r.json(); }).then(draw)
    .catch(function(e){ document.getElementById('status').textContent = 'dashboard server unreachable: ' + e; })
    .finally(function(){ setTimeout(poll, POLL_MS); });
}
poll();
</script></body></html>
"""


def page_html(*, experiment: str, storage_label: str, poll_s: float) -> str:
    sections = []
    for name, label in FIGURE_TITLES.items():
        if name == "diversity":
            sections.append('<h2>Members</h2><div id="members-slot"></div>'
                            '<h2>Best schedule</h2><div id="schedule-slot"></div>')
        sections.append(f'<h2>{label}</h2><div class="figure" id="fig-{name}"></div>')
    return (_PAGE.replace("__SECTIONS__", "\n".join(sections))
            .replace("__POLL_MS__", str(int(poll_s * 1000)))
            .replace("__EXPERIMENT__", html.escape(experiment or "…"))
            .replace("__STORAGE__", html.escape(storage_label)))


def _host_name(header: str) -> str:
    """The host part of a ``Host`` header (``[::1]:8765`` → ``[::1]``, ``localhost:80`` → ``localhost``)."""
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0]


def _handler(source: DataSource, page: bytes, check_host: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "poptrain-dashboard"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            pass  # one line per poll would drown the terminal

        def _send(self, status: int, body: bytes, ctype: str, cache: str = "no-store") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", cache)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            if check_host:
                if _host_name(self.headers.get("Host") or "") not in LOOPBACK_HOSTS:
                    self._send(HTTPStatus.FORBIDDEN, b"forbidden host\n", "text/plain; charset=utf-8")
                    return
            path = self.path.split("?", 1)[0]
            try:
                if path in ("/", "/index.html"):
                    self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
                elif path == "/api/data":
                    query = urllib.parse.parse_qs(self.path.partition("?")[2])
                    since = (query.get("since") or [None])[0]
                    self._send(HTTPStatus.OK, source.payload(since), "application/json")
                elif path == "/plotly.js":
                    self._send(HTTPStatus.OK, plotly_js().encode("utf-8"), "application/javascript; charset=utf-8",
                               cache="max-age=3600")
                elif path == "/healthz":
                    self._send(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8")
                else:
                    self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the browser went away mid-answer

        do_HEAD = do_GET

    return Handler


class Dashboard:
    """A running dashboard server; :meth:`close` stops it.

    Attributes:
        url: the page's address, e.g. ``http://127.0.0.1:8765/``.
        source: what the page shows, read from storage.
    """

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread | None, source: DataSource) -> None:
        self.source = source
        self._server = server
        self._thread = thread
        host, port = server.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        self.host, self.port = str(host), int(port)
        self.url = f"http://{shown}:{port}/"

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.25)

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()  # only a thread running serve_forever can be told to stop
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def serve_dashboard(storage_url: str, name: str | None = None, *, host: str = "127.0.0.1", port: int = 8765,
                    poll_s: float = 2.0, background: bool = True) -> Dashboard:
    """Start the dashboard over ``storage_url`` (the experiment ``name``, or the only one).

    Args:
        port: 0 picks a free port (see ``Dashboard.url``).
        background: serve from a daemon thread and return at once; otherwise
            the caller runs ``Dashboard.serve_forever()``.

    Raises:
        StorageError: the storage cannot be opened.
        ConfigError: the port is in use or the address cannot be bound.
    """
    from poptrain.reporting.commands import open_existing_storage
    from poptrain.results import load_result

    storage = open_existing_storage(storage_url)
    label = mask(storage_url)
    source = DataSource(lambda: load_result(storage, name), label=label, min_interval_s=min(1.0, poll_s / 2))
    page = page_html(experiment=name or "", storage_label=label, poll_s=poll_s).encode("utf-8")
    check_host = host in LOOPBACK_HOSTS
    try:
        server = ThreadingHTTPServer((host, port), _handler(source, page, check_host))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is already in use; pick another with --port "
                              f"(or --port 0 for any free port)") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    server.daemon_threads = True
    thread = None
    if background:
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.25},
                                  name="poptrain-dashboard", daemon=True)
        thread.start()
    return Dashboard(server, thread, source)


__all__ = ["Dashboard", "DataSource", "serve_dashboard"]
