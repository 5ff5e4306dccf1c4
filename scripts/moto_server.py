"""Starts moto in server mode on a free loopback port for the test suites.

Usage: moto_server.py PORT_FILE
Writes the chosen port to PORT_FILE once listening; runs until killed.

Why not plain `moto_server`: moto's DynamoDB TransactWriteItems deep-copies the whole
table (for its rollback) without a lock, so a concurrent write to the same table makes it
fail with "dictionary changed size during iteration" (and a rollback could undo the other
write). Real DynamoDB is linearizable per item. We serialise DynamoDB requests here;
SQS requests, including 20 s long polls, stay concurrent.

Its transactions also back up every table they touch, whole, before applying anything
(and moto did so once per operation): with tables of hundreds of large leads, most of
the suite's DynamoDB time went into these copies. Here a transaction saves only the items
it touches and puts them back if it is cancelled.
"""

import copy
import os
import sys
import threading

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

_dynamodb = threading.Lock()


class _NoTableCopy:
    """Stands in for the `copy` module inside moto's DynamoDB models during one transaction:
    its whole-table backup becomes the table itself (so its rollback is a no-op), and
    `_transact_with_item_undo` restores the touched items instead."""

    def deepcopy(self, obj, memo=None):
        if isinstance(obj, dynamodb_models.Table):
            return obj
        return copy.deepcopy(obj, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


def _slot(table, op_type, op):
    """The (hash, range) values of the item an operation writes, as moto keys its items."""
    attrs = op["Item"] if op_type == "Put" else op["Key"]
    hash_value = DynamoType(attrs[table.hash_key_attr])
    range_value = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr is not None else None
    return hash_value, range_value


def _restore(table, hash_value, range_value, old):
    if range_value is not None:
        if old is None:
            table.items[hash_value].pop(range_value, None)
        else:
            table.items[hash_value][range_value] = old
    elif old is None:
        table.items.pop(hash_value, None)
    else:
        table.items[hash_value] = old


def _transact_with_item_undo(original):
    def transact_write_items(self, transact_items):
        undo = []
        for entry in transact_items:
            for op_type, op in entry.items():
                table = self.tables.get(op.get("TableName"))
                if table is None or op_type not in ("Put", "Delete", "Update"):
                    continue
                try:
                    hash_value, range_value = _slot(table, op_type, op)
                    current = table.get_item(hash_value, range_value)
                except Exception:
                    # A malformed operation: moto refuses it before writing anything.
                    continue
                undo.append((table, hash_value, range_value, copy.deepcopy(current)))
        # Safe to swap the module reference: DynamoDB requests are serialised below.
        dynamodb_models.copy = _NoTableCopy()
        try:
            return original(self, transact_items)
        except BaseException:
            for table, hash_value, range_value, old in reversed(undo):
                _restore(table, hash_value, range_value, old)
            raise
        finally:
            dynamodb_models.copy = copy

    return transact_write_items


dynamodb_models.DynamoDBBackend.transact_write_items = _transact_with_item_undo(
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
