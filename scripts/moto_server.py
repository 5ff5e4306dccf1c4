"""Starts moto in server mode on a free loopback port for the test suites.

Usage: moto_server.py PORT_FILE
Writes the chosen port to PORT_FILE once listening; runs until killed.

Why not plain `moto_server`: moto's DynamoDB TransactWriteItems deep-copies the whole
table (for its rollback) without a lock, so a concurrent write to the same table makes it
fail with "dictionary changed size during iteration" (and a rollback could undo the other
write). Real DynamoDB is linearizable per item. We serialise DynamoDB requests here;
SQS requests, including 20 s long polls, stay concurrent.
"""

import os
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

_dynamodb = threading.Lock()


def serialise_dynamodb(app):
    def wrapper(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with _dynamodb:
                return [b"".join(app(environ, start_response))]
        return app(environ, start_response)

    return wrapper


def main() -> None:
    port_file = sys.argv[1]
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, serialise_dynamodb(app), threaded=True)
    os.environ["MOTO_PORT"] = str(server.server_port)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_port))
    os.replace(tmp, port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
