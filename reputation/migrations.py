"""The reputation database schema, as an ordered list of sqlite-utils migrations.

Why migrations and not ``CREATE TABLE IF NOT EXISTS``: a deployed database must be carried
forward when the schema changes, each step exactly once and atomically. sqlite-utils'
``Migrations`` records every applied step in ``_sqlite_migrations`` and runs each one in a
transaction together with that record. Rules for adding a step: append a new function,
never edit or reorder an applied one. A database that has steps this code does not know
was written by a newer spitwall and is refused (see :func:`unknown_migrations`).

Times are UNIX seconds (REAL). Numbers are canonical E.164 digits without ``+``.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATION_SET = "spitwall.reputation"
migrations = Migrations(MIGRATION_SET)


def _run(db: Database, statements: str) -> None:
    # One statement at a time: sqlite3's executescript() would COMMIT the migration's
    # transaction behind our back.
    for stmt in statements.split(";\n"):
        if stmt.strip():
            db.execute(stmt)


@migrations(name="0001_initial")
def m0001_initial(db: Database) -> None:
    _run(
        db,
        """
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('user', 'admin', 'auditor')),
    password_hash TEXT,
    created REAL NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE user_numbers (
    tn TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created REAL NOT NULL
);
CREATE INDEX user_numbers_user ON user_numbers(user_id);
CREATE TABLE tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    label TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    expires REAL
);
CREATE INDEX tokens_user ON tokens(user_id);
CREATE TABLE settings (
    user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    data TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE list_entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL CHECK (scope IN ('global', 'user')),
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('block', 'allow', 'dno')),
    pattern TEXT NOT NULL CHECK (pattern GLOB '[1-9]*' AND pattern NOT GLOB '*[^0-9]*'),
    is_prefix INTEGER NOT NULL CHECK (is_prefix IN (0, 1)),
    note TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL CHECK (source IN ('api', 'csv', 'admin', 'learned', 'config')),
    created REAL NOT NULL,
    expires REAL,
    CHECK ((scope = 'global') = (user_id IS NULL)),
    CHECK (kind != 'dno' OR scope = 'global')
);
CREATE UNIQUE INDEX list_entries_unique
    ON list_entries(ifnull(user_id, 0), kind, pattern, is_prefix);
CREATE INDEX list_entries_user ON list_entries(user_id);
CREATE TABLE reputation (
    key_kind TEXT NOT NULL CHECK (key_kind IN ('tn', 'ip', 'origid', 'spc')),
    key TEXT NOT NULL,
    calls REAL NOT NULL DEFAULT 0,
    answered REAL NOT NULL DEFAULT 0,
    short_calls REAL NOT NULL DEFAULT 0,
    long_calls REAL NOT NULL DEFAULT 0,
    cancels REAL NOT NULL DEFAULT 0,
    unwanted_607 REAL NOT NULL DEFAULT 0,
    reports_spam REAL NOT NULL DEFAULT 0,
    reports_not_spam REAL NOT NULL DEFAULT 0,
    challenge_passed REAL NOT NULL DEFAULT 0,
    challenge_failed REAL NOT NULL DEFAULT 0,
    voicemail_left REAL NOT NULL DEFAULT 0,
    voicemail_none REAL NOT NULL DEFAULT 0,
    first_seen REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (key_kind, key)
) WITHOUT ROWID;
CREATE TABLE learned_allow (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tn TEXT NOT NULL,
    strength INTEGER NOT NULL CHECK (strength BETWEEN 0 AND 3),
    how TEXT NOT NULL,
    learned REAL NOT NULL,
    last_seen REAL NOT NULL,
    count INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (user_id, tn)
) WITHOUT ROWID;
CREATE TABLE calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL,
    time REAL NOT NULL,
    user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    callee TEXT NOT NULL,
    caller TEXT,
    source_ip TEXT NOT NULL DEFAULT '',
    trunk TEXT,
    verstat TEXT,
    attest TEXT,
    origid TEXT,
    spc TEXT,
    score REAL,
    reasons TEXT NOT NULL DEFAULT '[]',
    action TEXT NOT NULL,
    outcome TEXT,
    final_code INTEGER,
    answered INTEGER NOT NULL DEFAULT 0,
    duration REAL,
    ended REAL
);
CREATE INDEX calls_call_id ON calls(call_id);
CREATE INDEX calls_user_time ON calls(user_id, time);
CREATE INDEX calls_time ON calls(time);
CREATE TABLE feedback_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    call_id TEXT,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    user_id INTEGER,
    caller TEXT,
    weight REAL NOT NULL DEFAULT 1,
    targets TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX feedback_call ON feedback_events(call_id);
CREATE INDEX feedback_time ON feedback_events(time);
CREATE TABLE voicemails (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    call_id TEXT,
    caller TEXT,
    time REAL NOT NULL,
    duration REAL NOT NULL DEFAULT 0,
    path TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0,
    score REAL,
    reasons TEXT NOT NULL DEFAULT '[]',
    heard INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX voicemails_user_time ON voicemails(user_id, time)
""",
    )


@migrations(name="0002_call_reports")
def m0002_call_reports(db: Database) -> None:
    """A subscriber's verdict on a call gets its own column instead of overwriting the
    call's outcome (a reported call still shows that it was answered and for how long)."""
    _run(
        db,
        """
ALTER TABLE calls ADD COLUMN report TEXT CHECK (report IN ('spam', 'not_spam'));
ALTER TABLE calls ADD COLUMN reported REAL;
CREATE INDEX feedback_kind_time ON feedback_events(kind, time)
""",
    )


# table → (key column expression 1, key column expression 2 or NULL), for the change feed
FEED_KEYS: dict[str, tuple[str, str]] = {
    "list_entries": ("{r}.id", "NULL"),
    "users": ("{r}.id", "NULL"),
    "user_numbers": ("{r}.user_id", "NULL"),
    "tokens": ("{r}.id", "NULL"),
    "settings": ("{r}.user_id", "NULL"),
    "learned_allow": ("{r}.user_id", "{r}.tn"),
    "reputation": ("{r}.key_kind", "{r}.key"),
}


@migrations(name="0003_change_feed")
def m0003_change_feed(db: Database) -> None:
    """A change feed, so several worker processes sharing the file keep their in-memory state
    in step: every insert, update and delete of state the call path holds in memory appends
    (table, key) to ``changes``; each process applies what it has not seen (Store.sync)."""
    db.execute(
        "CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL,"
        " tbl TEXT NOT NULL, k1 TEXT, k2 TEXT)"
    )
    db.execute("CREATE INDEX changes_time ON changes(time)")
    now = "(julianday('now') - 2440587.5) * 86400.0"
    for table, (k1, k2) in FEED_KEYS.items():
        for event, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
            db.execute(
                f"CREATE TRIGGER feed_{table}_{event.lower()} AFTER {event} ON {table} BEGIN"
                f" INSERT INTO changes (time, tbl, k1, k2) VALUES ({now}, '{table}',"
                f" {k1.format(r=row)}, {k2.format(r=row)}); END"
            )
    # Counters are merged by addition now (several writers): see counters.add_counters.


@migrations(name="0004_feed_judgements_only")
def m0004_feed_judgements_only(db: Database) -> None:
    """Plain call counts change on every call: feeding them to other processes would put
    several change rows per call in the file. The feedback writer now records a change only
    for judgements (607s, reports, challenge results ...), see counters.note_judgement."""
    for event in ("insert", "update", "delete"):
        db.execute(f"DROP TRIGGER feed_reputation_{event}")


# table → (key 1, key 2) of the challenge-pass tables, for the change feed (insert and
# update only: expired rows are deleted by time, and every process forgets them by time)
PASS_FEED_KEYS: dict[str, tuple[str, str]] = {
    "challenge_passes": ("NEW.caller", "NEW.callee"),
    "spent_passes": ("NEW.jti", "NULL"),
}


@migrations(name="0005_challenge_passes")
def m0005_challenge_passes(db: Database) -> None:
    """Challenge passes shared by worker processes. A caller who passed the challenge is
    remembered (caller → callee until a time) by whichever process received the UA's
    report, and a pass token's id may be spent once in all of them: both live in the file,
    and the change feed carries them to the other processes' memory."""
    _run(
        db,
        """
CREATE TABLE challenge_passes (
    caller TEXT NOT NULL,
    callee TEXT NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (caller, callee)
) WITHOUT ROWID;
CREATE INDEX challenge_passes_until ON challenge_passes(until);
CREATE TABLE spent_passes (
    jti TEXT PRIMARY KEY,
    expires REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX spent_passes_expires ON spent_passes(expires)
""",
    )
    now = "(julianday('now') - 2440587.5) * 86400.0"
    for table, (k1, k2) in PASS_FEED_KEYS.items():
        for event in ("INSERT", "UPDATE"):
            db.execute(
                f"CREATE TRIGGER feed_{table}_{event.lower()} AFTER {event} ON {table} BEGIN"
                f" INSERT INTO changes (time, tbl, k1, k2) VALUES ({now}, '{table}', {k1}, {k2});"
                " END"
            )


@migrations(name="0006_challenge_diverts")
def m0006_challenge_diverts(db: Database) -> None:
    """What a diverted call's identity proved (its verstat), for the bridged leg the
    challenge UA places after a pass: that leg may reach another worker process than the
    one that diverted the call, and the callee must still see the original verstat."""
    _run(
        db,
        """
CREATE TABLE challenge_diverts (
    caller TEXT NOT NULL,
    callee TEXT NOT NULL,
    verstat TEXT NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (caller, callee)
) WITHOUT ROWID;
CREATE INDEX challenge_diverts_until ON challenge_diverts(until)
""",
    )
    now = "(julianday('now') - 2440587.5) * 86400.0"
    for event in ("INSERT", "UPDATE"):
        db.execute(
            f"CREATE TRIGGER feed_challenge_diverts_{event.lower()} AFTER {event}"
            f" ON challenge_diverts BEGIN INSERT INTO changes (time, tbl, k1, k2) VALUES ({now},"
            " 'challenge_diverts', NEW.caller, NEW.callee); END"
        )


def unknown_migrations(db: Database) -> list[str]:
    """Applied steps this code does not know: the file comes from a newer spitwall."""
    known = {m.name for m in migrations._migrations}
    return [a.name for a in migrations.applied(db) if a.name not in known]


def apply(db: Database) -> list[str]:
    """Apply pending steps; return their names (empty when the schema is current)."""
    pending = [m.name for m in migrations.pending(db)]
    if pending:
        migrations.apply(db)
    return pending


def schema_version(db: Database) -> int:
    return len(migrations.applied(db))
