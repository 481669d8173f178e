"""moto's S3 server with atomic writes per key: usage: moto-atomic.py [-H HOST] [-p PORT]

moto checks If-Match / If-None-Match and then stores the object without a lock, so under load
two compare-and-swap writers can both pass the check and one update is lost (seen with 16
Rust clients x 10 increments: 159 of 160). This launcher runs the same moto application
(threaded, like `moto_server`) but serializes the requests that write one key: PUT, POST
and DELETE on the same host and path take that key's lock. Part uploads (PUT ?partNumber=) do not
touch the key and stay parallel; reads are never blocked.
"""
import argparse
import os
import signal
import sys
import threading
from collections import defaultdict

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

WRITES = {"PUT", "POST", "DELETE"}


def atomic_per_key(app):
    locks = defaultdict(threading.Lock)
    locks_lock = threading.Lock()

    def wrapped(environ, start_response):
        query = environ.get("QUERY_STRING", "")
        if environ.get("REQUEST_METHOD") not in WRITES or "partNumber=" in query:
            return app(environ, start_response)
        key = (environ.get("HTTP_HOST", ""), environ.get("PATH_INFO", ""))
        with locks_lock:
            lock = locks[key]
        with lock:
            # Consume the response inside the lock: moto does its work while producing it.
            return list(app(environ, start_response))

    return wrapped


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        atomic_per_key(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
