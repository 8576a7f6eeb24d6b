"""PostgreSQL as Django ships it, except that emptying the database between transactional
tests (``flush``) deletes the rows instead of truncating the tables.

The test tables hold a few hundred rows; TRUNCATE gives every table and index a new file
(~70 tables: 1.5–3 s a flush on a loaded machine), DELETE takes some milliseconds. The rows
are gone either way and, as with Django's TRUNCATE (no RESTART IDENTITY), sequences go on.
Foreign keys are DEFERRABLE INITIALLY DEFERRED and the statements run in one transaction
(``execute_sql_flush``), so the order of the tables does not matter. A flush that resets
sequences or cascades to other tables is Django's own.
"""

from django.db.backends.postgresql import base, operations


class DatabaseOperations(operations.DatabaseOperations):
    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or allow_cascade or not tables:
            return super().sql_flush(
                style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        # Without triggers (session_replication_role): the dashboards' count triggers
        # (projects 0006) would write change rows for the tasks deleted after their table was
        # emptied. The transaction's deferred foreign-key checks go too: every table empties.
        return ["SET LOCAL session_replication_role = replica;"] + [
            f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};"
            for table in tables
        ]


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
