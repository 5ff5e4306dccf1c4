"""Starts moto in server mode on a free loopback port for the test suites.

Usage: moto_server.py PORT_FILE
Writes the chosen port to PORT_FILE once listening; runs until killed.

Why not plain `moto_server`: moto's DynamoDB TransactWriteItems deep-copies the whole
table (for its rollback) without a lock, so a concurrent write to the same table makes it
fail with "dictionary changed size during iteration" (and a rollback could undo the other
write). Real DynamoDB is linearizable per item. We serialise DynamoDB requests here;
SQS requests, including 20 s long polls, stay concurrent.

It also takes that backup once per table instead of once per operation: moto copies the
table again for each of a transaction's (up to 100) operations before applying any, so
the copies are identical and the repeats only cost time (quadratic in practice).
"""

import copy
import os
import sys
import threading

import moto.dynamodb.models as dynamodb_models
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

_dynamodb = threading.Lock()


class _CopyOncePerTable:
    """Stands in for the `copy` module inside moto's DynamoDB models during one transaction."""

    def __init__(self):
        self._tables = {}

    def deepcopy(self, obj, memo=None):
        if isinstance(obj, dynamodb_models.Table):
            if id(obj) not in self._tables:
                self._tables[id(obj)] = copy.deepcopy(obj, memo)
            return self._tables[id(obj)]
        return copy.deepcopy(obj, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


def _transact_with_one_backup(original):
    def transact_write_items(self, transact_items):
        # Safe to swap the module reference: DynamoDB requests are serialised below.
        dynamodb_models.copy = _CopyOncePerTable()
        try:
            return original(self, transact_items)
        finally:
            dynamodb_models.copy = copy

    return transact_write_items


dynamodb_models.DynamoDBBackend.transact_write_items = _transact_with_one_backup(
    dynamodb_models.DynamoDBBackend.transact_write_items
)


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
