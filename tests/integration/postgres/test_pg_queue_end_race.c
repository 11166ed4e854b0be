/*
 * An ACTIVE token ends without the concert lock (a payment marks it DONE, a
 * leave EXPIRED) while an admission, under the lock, expires the concert's
 * due tokens. When the token's time runs out between the two calls' clocks,
 * the expiry finds it due in its snapshot and waits for the ending
 * transaction's row lock. Once that commits, the expiry must see the token
 * already ended: not turn DONE into EXPIRED, and not book the end a second
 * time — counting it twice lowered active_count below the ACTIVE tokens,
 * after which admission let more than max_active in.
 *
 * The interleaving is forced with two libpq sessions: the first ends the
 * token in an open transaction, the second runs an admission that blocks on
 * the token's row (seen in pg_stat_activity), then the first commits.
 */
#define _GNU_SOURCE
#include <string.h>

#include "pg_itest.h"

enum { MAX_ACTIVE = 2 };
#define IDLE_TTL (10 * IT_MINUTE)
#define ACTIVE_TTL (10 * IT_MINUTE)

static concert_queue_status *enter(concert_engine *e, const char *user, int64_t concert)
{
	concert_queue_status *st = NULL;
	IT_RC(concert_queue_enter(e, &st, user, concert), 0);
	if (!st)
		exit(it_finish("test_pg_queue_end_race"));
	return st;
}

/* concert_queue_call(op, ...) as the queue slot sends it, at `now`. */
static void queue_call_sql(char *sql, size_t size, int op, int64_t concert, int64_t token,
			   concert_time now)
{
	snprintf(sql, size,
		 "SELECT o_state FROM concert_queue_call(%d, %lld, %lld, NULL, false, %d, 0, "
		 "%lld, %lld, %lld)",
		 op, (long long)concert, (long long)token, MAX_ACTIVE, (long long)IDLE_TTL,
		 (long long)ACTIVE_TTL, (long long)now);
}

static void exec_ok(PGconn *db, const char *sql)
{
	PGresult *res = PQexec(db, sql);
	ExecStatusType st = PQresultStatus(res);
	IT_CHECK(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql,
		 PQerrorMessage(db));
	PQclear(res);
}

/* Until the backend of `blocked` waits for a lock (a condition, not a delay). */
static void wait_until_blocked(PGconn *watcher, PGconn *blocked)
{
	char sql[160];
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND wait_event_type = 'Lock'",
		 PQbackendPID(blocked));
	for (long i = 0; i < 1000000; i++)
		if (it_db_int(watcher, sql) == 1)
			return;
	it_fail(__FILE__, __LINE__, "the admission never waited for the token's row");
}

int main(void)
{
	char uri[IT_URI_MAX];
	it_uri(uri, "end_race", 2);
	it_clock *clock = it_clock_new();
	concert_engine *e = it_queue_engine(uri, uri, clock, MAX_ACTIVE, IDLE_TTL, ACTIVE_TTL);
	it_venue v;
	it_make_venue(e, &v, 1, 100);

	/* A and B ACTIVE (B a minute later, so only A is due below), C waits. */
	concert_queue_status *a = enter(e, "race-a", v.concert_id);
	atomic_fetch_add(&clock->now, IT_MINUTE);
	concert_queue_status *b = enter(e, "race-b", v.concert_id);
	concert_queue_status *c = enter(e, "race-c", v.concert_id);
	IT_CHECK(a->state == CONCERT_QUEUE_ACTIVE && b->state == CONCERT_QUEUE_ACTIVE &&
		 c->state == CONCERT_QUEUE_WAITING, "setup: states %d %d %d", a->state, b->state,
		 c->state);

	PGconn *ender = it_db(uri), *admitter = it_db(uri), *watcher = it_db(uri);
	char sql[512];
	/* A ends (complete) just before its expiry, in a transaction left open. */
	exec_ok(ender, "BEGIN");
	queue_call_sql(sql, sizeof(sql), 4, v.concert_id, a->token_id, a->expires_at - 1);
	exec_ok(ender, sql);
	/* An admission just after A's expiry finds A due and waits for its row. */
	queue_call_sql(sql, sizeof(sql), 5, v.concert_id, 0, a->expires_at + 1);
	IT_CHECK(PQsendQuery(admitter, sql) == 1, "send: %s", PQerrorMessage(admitter));
	wait_until_blocked(watcher, admitter);
	exec_ok(ender, "COMMIT");
	for (PGresult *res; (res = PQgetResult(admitter));) {
		IT_CHECK(PQresultStatus(res) == PGRES_TUPLES_OK, "admission failed: %s",
			 PQresultErrorMessage(res));
		PQclear(res);
	}

	char check[256];
	snprintf(check, sizeof(check), "SELECT state FROM queue_tokens WHERE id = %lld",
		 (long long)a->token_id);
	IT_CHECK(it_db_int(watcher, check) == CONCERT_QUEUE_DONE,
		 "the paid token is no longer DONE");
	/* B and C ACTIVE (C admitted into A's place), and counted as such. */
	snprintf(check, sizeof(check), "SELECT active_count FROM queue_concerts WHERE concert_id = %lld",
		 (long long)v.concert_id);
	int64_t counted = it_db_int(watcher, check);
	snprintf(check, sizeof(check),
		 "SELECT count(*) FROM queue_tokens WHERE concert_id = %lld AND state = 2",
		 (long long)v.concert_id);
	int64_t active = it_db_int(watcher, check);
	IT_CHECK(counted == MAX_ACTIVE && active == MAX_ACTIVE,
		 "active_count %lld for %lld ACTIVE tokens, expected %d for %d", (long long)counted,
		 (long long)active, MAX_ACTIVE, MAX_ACTIVE);

	PQfinish(watcher);
	PQfinish(admitter);
	PQfinish(ender);
	concert_free(a);
	concert_free(b);
	concert_free(c);
	concert_engine_close(e);
	return it_finish("test_pg_queue_end_race");
}
