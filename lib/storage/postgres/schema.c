/*
 * The schema: versioned migrations applied under an advisory lock, so any
 * number of host processes may open the same database at once. Migrations
 * are append-only: a released one is never edited, a change is a new one.
 *
 * Migration 1 (tables): constraints carry the invariants on their own —
 *   CHECK (balance >= 0); one CONFIRMED reservation per seat (partial unique
 *   index on reservation_seats); one payment per reservation (UNIQUE, and a
 *   deferred FK back from the reservation); one PAYMENT and one REFUND tx
 *   per reservation; idempotency keys unique per (user, operation, key);
 *   one live queue token per (concert, user).
 * Migration 2 (store functions) and 3 (queue functions): every operation
 * is one PL/pgSQL call, so one round trip and one transaction. Domain
 * errors are raised as SQLSTATE 'C9nnn' (nnn = -CONCERT_E*), which rolls
 * the call back whole.
 *
 * Time is the engine's `now` parameter (ms since the epoch), never the
 * database clock: the engine's clock is injectable, and hosts sharing one
 * database must keep their clocks in sync (NTP), as docs/backends.md says.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/postgres/pg.h"

/* pg_advisory_xact_lock key for migrations: "concert" in ASCII. */
#define MIGRATION_LOCK "29676689208964212"

static const char migration_tables[] =
"CREATE TABLE concerts (\n"
"  id bigserial PRIMARY KEY,\n"
"  title text NOT NULL CHECK (octet_length(title) BETWEEN 1 AND 200),\n"
"  opens_at bigint NOT NULL,\n"
"  closes_at bigint NOT NULL,\n"
"  CHECK (closes_at > opens_at));\n"
"CREATE TABLE concert_schedules (\n"
"  id bigserial PRIMARY KEY,\n"
"  concert_id bigint NOT NULL REFERENCES concerts(id),\n"
"  starts_at bigint NOT NULL,\n"
"  venue text NOT NULL CHECK (octet_length(venue) <= 120));\n"
"CREATE INDEX concert_schedules_by_concert ON concert_schedules(concert_id, starts_at);\n"
/* state: 0 AVAILABLE, 1 HELD (hold_id, hold_expires_at), 2 RESERVED (reservation_id).
 * A HELD seat whose hold_expires_at has passed reads AVAILABLE. */
"CREATE TABLE concert_seats (\n"
"  schedule_id bigint NOT NULL REFERENCES concert_schedules(id),\n"
"  seat_no integer NOT NULL CHECK (seat_no > 0),\n"
"  grade text NOT NULL CHECK (octet_length(grade) BETWEEN 1 AND 15),\n"
"  price bigint NOT NULL CHECK (price > 0),\n"
"  state smallint NOT NULL DEFAULT 0,\n"
"  version bigint NOT NULL DEFAULT 1,\n"
"  hold_id bigint,\n"
"  hold_expires_at bigint,\n"
"  reservation_id bigint,\n"
"  PRIMARY KEY (schedule_id, seat_no),\n"
"  CHECK ((state = 0 AND hold_id IS NULL AND reservation_id IS NULL)\n"
"      OR (state = 1 AND hold_id IS NOT NULL AND hold_expires_at IS NOT NULL AND reservation_id IS NULL)\n"
"      OR (state = 2 AND reservation_id IS NOT NULL AND hold_id IS NULL)));\n"
/* state: 1 HELD, 2 RELEASED, 3 PAID, 4 EXPIRED (set by the sweeper; a HELD
 * hold past expires_at reads EXPIRED without it). No foreign key to the
 * schedule: every hold would share a lock on the schedule's row (a
 * MultiXact per hold: the hottest row of a sale); the hold function reads
 * the schedule itself, and schedules are never deleted. */
"CREATE TABLE seat_holds (\n"
"  id bigserial PRIMARY KEY,\n"
"  user_id text NOT NULL CHECK (octet_length(user_id) BETWEEN 1 AND 64),\n"
"  concert_id bigint NOT NULL,\n"
"  schedule_id bigint NOT NULL,\n"
"  seat_nos integer[] NOT NULL,\n"
"  amount bigint NOT NULL CHECK (amount >= 0),\n"
"  created_at bigint NOT NULL,\n"
"  expires_at bigint NOT NULL,\n"
"  state smallint NOT NULL CHECK (state BETWEEN 1 AND 4),\n"
"  extensions integer NOT NULL DEFAULT 0,\n"
"  CHECK (state <> 1 OR cardinality(seat_nos) > 0));\n"
/* Every hold of a user, not only the live ones: the per-user limits count
 * the live ones through it with "state + 0 = 1", which no partial index on
 * state = 1 can serve. Partial on state = 1, this index tied with the
 * expiry index below in the planner's eyes whenever the statistics said
 * "no live holds" (after a sale's payments), and the generic plan then
 * read every live hold of every user on each hold. */
"CREATE INDEX seat_holds_by_user ON seat_holds(user_id);\n"
"CREATE INDEX seat_holds_live_by_expiry ON seat_holds(expires_at) WHERE state = 1;\n"
"CREATE TABLE wallets (\n"
"  user_id text PRIMARY KEY CHECK (octet_length(user_id) BETWEEN 1 AND 64),\n"
"  balance bigint NOT NULL DEFAULT 0 CHECK (balance >= 0));\n"
/* kind: 1 CHARGE, 2 PAYMENT (amount < 0), 3 REFUND; ref_id: reservation. */
"CREATE TABLE wallet_transactions (\n"
"  id bigserial PRIMARY KEY,\n"
"  user_id text NOT NULL,\n"
"  kind smallint NOT NULL,\n"
"  amount bigint NOT NULL,\n"
"  balance_after bigint NOT NULL CHECK (balance_after >= 0),\n"
"  ref_id bigint,\n"
"  created_at bigint NOT NULL,\n"
"  CHECK ((kind = 1 AND amount > 0 AND ref_id IS NULL)\n"
"      OR (kind = 2 AND amount < 0 AND ref_id IS NOT NULL)\n"
"      OR (kind = 3 AND amount > 0 AND ref_id IS NOT NULL)));\n"
"CREATE INDEX wallet_transactions_by_user ON wallet_transactions(user_id, id);\n"
"CREATE UNIQUE INDEX wallet_transactions_one_per_reservation\n"
"  ON wallet_transactions(ref_id, kind) WHERE ref_id IS NOT NULL;\n"
"CREATE TABLE reservations (\n"
"  id bigserial PRIMARY KEY,\n"
"  user_id text NOT NULL,\n"
"  schedule_id bigint NOT NULL,\n"
"  hold_id bigint NOT NULL UNIQUE REFERENCES seat_holds(id),\n"
"  payment_id bigint NOT NULL UNIQUE,\n"
"  seat_nos integer[] NOT NULL CHECK (cardinality(seat_nos) > 0),\n"
"  amount bigint NOT NULL CHECK (amount > 0),\n"
"  state smallint NOT NULL CHECK (state IN (1, 2)),\n"
"  created_at bigint NOT NULL);\n"
"CREATE TABLE reservation_seats (\n"
"  reservation_id bigint NOT NULL REFERENCES reservations(id),\n"
"  schedule_id bigint NOT NULL,\n"
"  seat_no integer NOT NULL,\n"
"  confirmed boolean NOT NULL,\n"
"  PRIMARY KEY (reservation_id, seat_no));\n"
"CREATE UNIQUE INDEX reservation_seats_one_confirmed\n"
"  ON reservation_seats(schedule_id, seat_no) WHERE confirmed;\n"
"CREATE TABLE payments (\n"
"  id bigserial PRIMARY KEY,\n"
"  reservation_id bigint NOT NULL UNIQUE REFERENCES reservations(id),\n"
"  user_id text NOT NULL,\n"
"  amount bigint NOT NULL CHECK (amount > 0),\n"
"  balance_after bigint NOT NULL CHECK (balance_after >= 0),\n"
"  idem_key text,\n"
"  created_at bigint NOT NULL);\n"
"ALTER TABLE reservations ADD CONSTRAINT reservations_payment_fk FOREIGN KEY (payment_id)\n"
"  REFERENCES payments(id) DEFERRABLE INITIALLY DEFERRED;\n"
/* op: 1 charge (amount, balance), 2 pay (hold_id, reservation_id). */
"CREATE TABLE idempotency_keys (\n"
"  user_id text NOT NULL,\n"
"  op smallint NOT NULL CHECK (op IN (1, 2)),\n"
"  idem_key text NOT NULL CHECK (octet_length(idem_key) BETWEEN 1 AND 64),\n"
"  amount bigint,\n"
"  balance bigint,\n"
"  hold_id bigint,\n"
"  reservation_id bigint REFERENCES reservations(id),\n"
"  created_at bigint NOT NULL,\n"
"  PRIMARY KEY (user_id, op, idem_key));\n"
/* The queue: a row per concert (lock, counters, admission head), tokens,
 * a log of ACTIVE tokens ended without the lock (consumed by admission),
 * and a Fenwick tree of departures (see functions_queue.c). */
"CREATE TABLE queue_concerts (\n"
"  concert_id bigint PRIMARY KEY,\n"
"  last_seq bigint NOT NULL DEFAULT 0,\n"
"  admitted_seq bigint NOT NULL DEFAULT 0,\n"
"  active_count integer NOT NULL DEFAULT 0 CHECK (active_count >= 0),\n"
"  admitted_total bigint NOT NULL DEFAULT 0,\n"
"  bucket bigint NOT NULL DEFAULT 0,\n"
"  bucket_at bigint NOT NULL DEFAULT 0,\n"
"  bucket_rate integer NOT NULL DEFAULT 0,\n"
"  retention bigint NOT NULL DEFAULT -1);\n"
/* state: 1 WAITING, 2 ACTIVE, 3 EXPIRED, 4 DONE. */
"CREATE TABLE queue_tokens (\n"
"  id bigserial PRIMARY KEY,\n"
"  concert_id bigint NOT NULL,\n"
"  user_id text NOT NULL CHECK (octet_length(user_id) BETWEEN 1 AND 64),\n"
"  seq bigint NOT NULL,\n"
"  state smallint NOT NULL CHECK (state BETWEEN 1 AND 4),\n"
"  issued_at bigint NOT NULL,\n"
"  expires_at bigint NOT NULL,\n"
"  ended_at bigint,\n"
"  UNIQUE (concert_id, seq));\n"
"CREATE UNIQUE INDEX queue_tokens_one_live ON queue_tokens(concert_id, user_id) WHERE state IN (1, 2);\n"
"CREATE INDEX queue_tokens_waiting ON queue_tokens(concert_id, seq) WHERE state = 1;\n"
"CREATE INDEX queue_tokens_due ON queue_tokens(concert_id, expires_at) WHERE state IN (1, 2);\n"
"CREATE TABLE queue_released (\n"
"  id bigserial PRIMARY KEY,\n"
"  concert_id bigint NOT NULL);\n"
"CREATE INDEX queue_released_by_concert ON queue_released(concert_id);\n"
"CREATE INDEX queue_tokens_ended ON queue_tokens(concert_id, ended_at) WHERE state IN (3, 4);\n"
"CREATE TABLE queue_departures (\n"
"  concert_id bigint NOT NULL,\n"
"  node bigint NOT NULL,\n"
"  count bigint NOT NULL,\n"
"  PRIMARY KEY (concert_id, node));\n";

typedef struct migration {
	int version;
	const char *name;
	const char *sql;
} migration;

static const migration migrations[] = {
	{ 1, "tables", migration_tables },
	{ 2, "store functions", pg_sql_store_functions },
	{ 3, "queue functions", pg_sql_queue_functions },
};

#define MIGRATION_COUNT ((int)(sizeof(migrations) / sizeof(migrations[0])))

static int exec_ok(PGconn *conn, const char *sql, const char *what)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	int rc = 0;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		rc = concert_sys_errorf(PQstatus(conn) == CONNECTION_OK ? CONCERT_EINTERNAL
									 : CONCERT_EUNAVAILABLE,
					"PostgreSQL migration (%s): %s", what,
					msg ? msg : PQerrorMessage(conn));
	}
	PQclear(res);
	return rc;
}

static int current_version(PGconn *conn, int *out)
{
	PGresult *res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM concert_migrations");
	int rc = 0;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		*out = atoi(PQgetvalue(res, 0, 0));
	else
		rc = concert_sys_errorf(CONCERT_EINTERNAL, "PostgreSQL: cannot read migrations: %s",
					PQerrorMessage(conn));
	PQclear(res);
	return rc;
}

static int apply(PGconn *conn, const migration *m)
{
	int rc = exec_ok(conn, m->sql, m->name);
	if (rc < 0)
		return rc;
	char version[PG_INT_BUF];
	const char *params[] = { pg_param_int(version, m->version), m->name };
	PGresult *res = PQexecParams(conn,
		"INSERT INTO concert_migrations(version, name) VALUES ($1, $2)", 2, NULL, params,
		NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = concert_sys_errorf(CONCERT_EINTERNAL, "PostgreSQL: cannot record migration %d: %s",
					m->version, PQerrorMessage(conn));
	PQclear(res);
	return rc;
}

int pg_schema_migrate(PGconn *conn, const char *schema)
{
	/* The schema name passed the URI check ([a-z_][a-z0-9_]*) and is quoted
	 * anyway: it is the only identifier that is not a constant. */
	char *ident = PQescapeIdentifier(conn, schema, strlen(schema));
	if (!ident)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	char create[160];
	snprintf(create, sizeof(create), "CREATE SCHEMA IF NOT EXISTS %s", ident);
	PQfreemem(ident);

	int rc = exec_ok(conn, "BEGIN", "begin");
	if (rc == 0)
		rc = exec_ok(conn, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ")", "lock");
	if (rc == 0)
		rc = exec_ok(conn, create, "schema");
	if (rc == 0)
		rc = exec_ok(conn,
			"CREATE TABLE IF NOT EXISTS concert_migrations (version integer PRIMARY KEY, "
			"name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
			"migrations table");
	int version = 0;
	if (rc == 0)
		rc = current_version(conn, &version);
	for (int i = 0; rc == 0 && i < MIGRATION_COUNT; i++)
		if (migrations[i].version > version)
			rc = apply(conn, &migrations[i]);
	if (rc == 0)
		rc = exec_ok(conn, "COMMIT", "commit");
	else
		PQclear(PQexec(conn, "ROLLBACK"));
	return rc;
}

/* --- statements ------------------------------------------------------------------- */

#define HOLD_COLUMNS \
	"id, schedule_id, concert_id, amount, created_at, expires_at, " \
	"CASE WHEN state = 1 AND expires_at <= $2 THEN 4 ELSE state END, extensions, user_id, seat_nos"

#define SCHEDULE_COUNTS \
	"count(st.seat_no), count(*) FILTER (WHERE st.state = 1 AND st.hold_expires_at > $2), " \
	"count(*) FILTER (WHERE st.state = 2)"

static const struct {
	int nparams;
	const char *sql;
} statements[PG_STMT_COUNT] = {
	[PG_CONCERT_ADD] = { 3,
		"INSERT INTO concerts(title, opens_at, closes_at) VALUES ($1, $2, $3) RETURNING id" },
	[PG_SCHEDULE_ADD] = { 3,
		"INSERT INTO concert_schedules(concert_id, starts_at, venue) "
		"SELECT c.id, $2::bigint, $3::text FROM concerts c WHERE c.id = $1 RETURNING id" },
	[PG_SEATS_ADD] = { 4, "SELECT concert_seats_add($1, $2, $3, $4)" },
	[PG_CONCERTS_LIST] = { 0,
		"SELECT id, title, opens_at, closes_at FROM concerts ORDER BY id" },
	[PG_CONCERT_GET] = { 1,
		"SELECT id, title, opens_at, closes_at FROM concerts WHERE id = $1" },
	[PG_SCHEDULES_LIST] = { 2,
		"SELECT s.id, s.concert_id, s.starts_at, s.venue, " SCHEDULE_COUNTS
		" FROM concerts c LEFT JOIN concert_schedules s ON s.concert_id = c.id "
		"LEFT JOIN concert_seats st ON st.schedule_id = s.id "
		"WHERE c.id = $1 GROUP BY s.id ORDER BY s.starts_at, s.id" },
	[PG_SCHEDULE_GET] = { 2,
		"SELECT s.id, s.concert_id, s.starts_at, s.venue, " SCHEDULE_COUNTS
		" FROM concert_schedules s LEFT JOIN concert_seats st ON st.schedule_id = s.id "
		"WHERE s.id = $1 GROUP BY s.id" },
	[PG_SEATS_LIST] = { 2,
		"SELECT st.seat_no, CASE WHEN st.state = 1 AND st.hold_expires_at <= $2 THEN 0 "
		"ELSE st.state END, st.price, st.version, st.grade "
		"FROM concert_schedules s LEFT JOIN concert_seats st ON st.schedule_id = s.id "
		"WHERE s.id = $1 ORDER BY st.seat_no" },
	[PG_HOLD] = { 9,
		"SELECT o_hold, o_amount FROM concert_hold_seats($1, $2, $3, $4, $5, $6, $7, $8, $9)" },
	[PG_HOLD_RELEASE] = { 4, "SELECT concert_hold_release($1, $2, $3, $4)" },
	[PG_HOLD_EXTEND] = { 6,
		"SELECT id, schedule_id, concert_id, amount, created_at, expires_at, state, extensions, "
		"user_id, seat_nos FROM concert_hold_extend($1, $2, $3, $4, $5, $6)" },
	[PG_HOLD_GET] = { 2, "SELECT " HOLD_COLUMNS " FROM seat_holds WHERE id = $1" },
	[PG_HOLD_SWEEP] = { 1,
		"WITH due AS (UPDATE seat_holds SET state = 4 WHERE state = 1 AND expires_at <= $1 "
		"RETURNING id, schedule_id, seat_nos), "
		"freed AS (UPDATE concert_seats s SET state = 0, hold_id = NULL, hold_expires_at = NULL, "
		"version = version + 1 FROM due, unnest(due.seat_nos) want(no) "
		"WHERE s.schedule_id = due.schedule_id AND s.seat_no = want.no AND s.state = 1 "
		"AND s.hold_id = due.id RETURNING 1) "
		"SELECT (SELECT count(*) FROM due), (SELECT count(*) FROM freed)" },
	[PG_CHARGE] = { 4, "SELECT concert_charge($1, $2, $3, $4)" },
	[PG_BALANCE] = { 1, "SELECT coalesce((SELECT balance FROM wallets WHERE user_id = $1), 0)" },
	[PG_HISTORY] = { 3,
		"SELECT id, kind, amount, balance_after, coalesce(ref_id, 0), created_at "
		"FROM wallet_transactions WHERE user_id = $1 AND ($2::bigint = 0 OR id < $2::bigint) "
		/* ordered as the (user_id, id) index: never a walk of the primary key */
		"ORDER BY user_id DESC, id DESC LIMIT $3" },
	[PG_PAY] = { 6,
		"SELECT o_payment, o_reservation, o_schedule, o_amount, o_balance, o_created, o_seats "
		"FROM concert_pay($1, $2, $3, $4, $5, $6)" },
	[PG_CANCEL] = { 3, "SELECT o_refunded, o_balance FROM concert_cancel($1, $2, $3)" },
	[PG_RESERVATION_GET] = { 1,
		"SELECT id, schedule_id, payment_id, amount, state, created_at, user_id, seat_nos "
		"FROM reservations WHERE id = $1" },
	/* One statement, so one snapshot: a consistent view without locks. */
	[PG_AUDIT] = { 0,
		"SELECT (SELECT coalesce(sum(balance), 0) FROM wallets), "
		"(SELECT coalesce(sum(amount) FILTER (WHERE kind = 1), 0) FROM wallet_transactions), "
		"(SELECT coalesce(-sum(amount) FILTER (WHERE kind = 2), 0) FROM wallet_transactions), "
		"(SELECT coalesce(sum(amount) FILTER (WHERE kind = 3), 0) FROM wallet_transactions), "
		"(SELECT count(*) FROM wallets), "
		"(SELECT count(*) FROM wallets w LEFT JOIN (SELECT user_id, sum(amount) AS total "
		"  FROM wallet_transactions GROUP BY user_id) t ON t.user_id = w.user_id "
		"  WHERE w.balance < 0 OR w.balance <> coalesce(t.total, 0)), "
		"(SELECT count(*) FROM concert_seats WHERE state = 2), "
		"(SELECT count(*) FROM concert_seats s WHERE s.state = 2 AND (SELECT count(*) "
		"  FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id "
		"  WHERE rs.schedule_id = s.schedule_id AND rs.seat_no = s.seat_no AND rs.confirmed "
		"  AND r.state = 1 AND r.id = s.reservation_id) <> 1) + "
		"(SELECT count(*) FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id "
		"  WHERE rs.confirmed <> (r.state = 1) OR (r.state = 1 AND NOT EXISTS (SELECT 1 "
		"  FROM concert_seats s WHERE s.schedule_id = rs.schedule_id AND s.seat_no = rs.seat_no "
		"  AND s.state = 2 AND s.reservation_id = r.id))), "
		"(SELECT count(*) FROM reservations WHERE state = 1), "
		"(SELECT count(*) FROM reservations r WHERE r.state = 1 AND "
		"  (SELECT count(*) FROM payments p WHERE p.reservation_id = r.id) <> 1)" },
	[PG_QUEUE_CALL] = { 10,
		"SELECT o_token, o_state, o_created, o_position, o_issued, o_expires, o_admitted_total, "
		"o_user, o_admitted FROM concert_queue_call($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)" },
	[PG_QUEUE_SWEEP] = { 1, "SELECT concert_queue_sweep($1)" },
	[PG_QUEUE_COUNTS] = { 2, "SELECT o_waiting, o_active FROM concert_queue_counts($1, $2)" },
	[PG_PING] = { 0, "SELECT 1" },
};

const char *pg_stmt_sql(pg_stmt stmt, int *out_nparams)
{
	*out_nparams = statements[stmt].nparams;
	return statements[stmt].sql;
}
