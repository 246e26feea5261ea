"""Serve the test app over HTTP: ``python -m app.serve [PORT]`` from the tests directory.

Plain 0.61 ships no HTTP server of its own (plain.pytest's browser fixture
expects gunicorn, which this project does not depend on), so the tests serve
``plain.wsgi:app`` with the standard library's WSGI server, one thread per
request. The chosen port is printed as ``listening <port>`` once the socket is
bound.
"""

from __future__ import annotations

import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}\n")


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    from plain.wsgi import app

    with make_server("127.0.0.1", port, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler) as server:
        print(f"listening {server.server_port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
