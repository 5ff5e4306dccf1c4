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

Moto is the suite's busiest process (about one of the two cores during the black-box
tests), so three more of its costs are cut here, none of which changes an answer: a
Query sorts the whole table before keeping one partition (here it starts from that
partition, or, on an index, from the items whose key attributes match); every request
lists moto's package folder on disk to find its service (listed once here); and every
request is logged (nothing reads that log).
"""

import copy
import os
import sys
import threading

import moto.dynamodb.models as dynamodb_models
from moto import backends
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, make_server

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


def _same(value, expected):
    """DynamoType equality, without casting the common case (strings) first."""
    if value is None or value.type != expected.type:
        return False
    return value.value == expected.value if expected.type == "S" else value == expected


def _items_of(table, partition):
    return list(partition.values()) if table.range_key_attr else [partition]


def _all_items_of_the_query(original):
    """`Table.all_items`, narrowed while `_query_from_its_partition` runs a Query. Both
    branches of moto's Query sort what this returns by the full key and keep only the
    matching partition, so leaving out the other partitions changes nothing."""

    def all_items(self):
        only = getattr(self, "_leadpush_query", None)
        if only is None:
            return original(self)
        kind, key = only
        if kind == "table":
            partition = self.items.get(key)
            return [] if partition is None else _items_of(self, partition)
        return [
            item
            for partition in self.items.values()
            for item in _items_of(self, partition)
            if all(_same(item.attrs.get(attr), value) for attr, value in key)
        ]

    return all_items


def _query_from_its_partition(original):
    def query(self, *args, **kwargs):
        # moto's DynamoDBBackend.query passes hash_key first and index_name eighth.
        hash_key = args[0] if args else kwargs.get("hash_key")
        index_name = args[7] if len(args) > 7 else kwargs.get("index_name")
        conditions = kwargs.get("hash_key_conditions")
        if index_name is None and hash_key is not None:
            self._leadpush_query = ("table", hash_key)
        elif index_name is not None and conditions:
            self._leadpush_query = ("index", list(conditions))
        try:
            return original(self, *args, **kwargs)
        finally:
            self._leadpush_query = None

    return query


Table.all_items = _all_items_of_the_query(Table.all_items)
Table.query = _query_from_its_partition(Table.query)

_MOTO_MODULES = frozenset(backends.list_of_moto_modules())
backends.list_of_moto_modules = lambda: _MOTO_MODULES


class _UnloggedRequests(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):
        pass


def serialise_dynamodb(app):
    def wrapper(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with _dynamodb:
                return [b"".join(app(environ, start_response))]
        return app(environ, start_response)

    return wrapper


def main() -> None:
    port_file = sys.argv[1]
    # A thread back from a socket call waits for the GIL up to this long (5 ms by
    # default) while another thread computes; each request makes several such calls.
    sys.setswitchinterval(0.0005)
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        "127.0.0.1", 0, serialise_dynamodb(app), threaded=True, request_handler=_UnloggedRequests
    )
    os.environ["MOTO_PORT"] = str(server.server_port)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_port))
    os.replace(tmp, port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
