"""eventsourcing's PostgreSQL store, with the libpq options of `LORALEDGER_DATABASE_URL`.

eventsourcing builds its connection pool from host, port, user, password and database name only;
`sslmode`, `application_name` and the other libpq options of the URL would be dropped. This
factory (named by `PERSISTENCE_MODULE`, see adapters/store.py) adds them to the pool's connection
arguments before the pool opens, so every pooled connection uses them.
"""

from __future__ import annotations

from eventsourcing.persistence import InfrastructureFactoryError
from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import Environment, EnvType
from psycopg.conninfo import conninfo_to_dict

from loraledger.adapters.store import LIBPQ_OPTIONS


class PostgresFactoryWithOptions(PostgresFactory):
    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        options = self.env.get(LIBPQ_OPTIONS) or ""
        if not options:
            return
        kwargs = self.datastore.pool.kwargs
        if not isinstance(kwargs, dict):  # eventsourcing hands the pool a dict; guard a change
            raise InfrastructureFactoryError("cannot pass libpq options to the PostgreSQL pool")
        kwargs.update(conninfo_to_dict(options))
