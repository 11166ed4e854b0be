/*
 * PostgreSQL integration tests: shared helpers (see pg_itest.h).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pg_itest.h"

int it_failures;
static pthread_mutex_t it_lock = PTHREAD_MUTEX_INITIALIZER;

void it_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&it_lock);
	it_failures++;
	if (it_failures <= 20) {
		fprintf(stderr, "FAIL %s:%d: ", file, line);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	pthread_mutex_unlock(&it_lock);
}

int it_finish(const char *name)
{
	int failed = it_failures != 0;
	printf("%s: %d passed, %d failed\n", name, !failed, failed);
	return failed;
}

const char *it_uri(char *buf, const char *tag, int pool)
{
	const char *base = getenv("CONCERT_TEST_PG_URI");
	if (!base || !*base) {
		fprintf(stderr, "CONCERT_TEST_PG_URI is not set (run through ctest)\n");
		exit(1);
	}
	snprintf(buf, IT_URI_MAX, "%s%cschema=%s_%ld&pool=%d", base, strchr(base, '?') ? '&' : '?',
		 tag, (long)getpid(), pool);
	return buf;
}

const char *it_schema_of(const char *uri)
{
	const char *s = strstr(uri, "schema=");
	return s ? s + 7 : "concert";
}

it_clock *it_clock_new(void)
{
	it_clock *c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			   -1, 0);
	if (c == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	atomic_store(&c->now, IT_EPOCH);
	return c;
}

concert_time it_clock_read(void *ctx)
{
	return atomic_load(&((it_clock *)ctx)->now);
}

/* Options both engines share: the URIs, a fixed secret and the shared clock. */
static void engine_options(concert_options *o, const char *store, const char *queue,
			   it_clock *clock)
{
	static const unsigned char secret[] = "pg-integration-secret";
	concert_options_init(o, CONCERT_OPTIONS_VERSION);
	o->store = store;
	o->queue = queue;
	o->secret = secret;
	o->secret_len = sizeof(secret) - 1;
	o->clock = it_clock_read;
	o->clock_ctx = clock;
}

static concert_engine *engine_open(const concert_options *o)
{
	concert_engine *e = NULL;
	if (concert_engine_open(&e, o) != 0) {
		fprintf(stderr, "engine open on %s failed: %s\n", o->store, concert_error_last()->message);
		exit(1);
	}
	return e;
}

concert_engine *it_engine(const char *uri, it_clock *clock, concert_time hold_ttl)
{
	concert_options o;
	engine_options(&o, uri, uri, clock);
	o.max_active = 1000000;
	o.active_ttl = 30 * IT_DAY;
	o.wait_idle_ttl = 30 * IT_DAY;
	o.hold_ttl = hold_ttl;
	o.hold_max_lifetime = hold_ttl * 3;
	o.max_holds_per_user = 100;
	o.max_seats_per_user = 100;
	return engine_open(&o);
}

concert_engine *it_queue_engine(const char *store, const char *queue, it_clock *clock,
	uint32_t max_active, concert_time wait_idle_ttl, concert_time active_ttl)
{
	concert_options o;
	engine_options(&o, store, queue, clock);
	o.max_active = max_active;
	o.wait_idle_ttl = wait_idle_ttl;
	o.active_ttl = active_ttl;
	return engine_open(&o);
}

void it_make_venue(concert_engine *e, it_venue *v, int32_t seats, int64_t price)
{
	concert_time now = concert_engine_now(e);
	memset(v, 0, sizeof(*v));
	IT_RC(concert_concert_add(e, &v->concert_id, "integration", now - IT_DAY, now + 30 * IT_DAY), 0);
	IT_RC(concert_schedule_add(e, &v->schedule_id, v->concert_id, now + 7 * IT_DAY, "hall"), 0);
	concert_seat_spec *specs = calloc((size_t)seats, sizeof(*specs));
	for (int32_t i = 0; i < seats; i++)
		specs[i] = (concert_seat_spec){ i + 1, price, "R" };
	IT_RC(concert_seats_add(e, v->schedule_id, specs, (size_t)seats), 0);
	free(specs);
	v->seats = seats;
}

int it_token(concert_engine *e, char *token, size_t size, const char *user, int64_t concert_id)
{
	concert_queue_status *st = NULL;
	int rc = concert_queue_enter(e, &st, user, concert_id);
	if (rc == 0 && st->state != CONCERT_QUEUE_ACTIVE)
		rc = CONCERT_ENOT_ACTIVE;
	if (rc == 0)
		snprintf(token, size, "%s", st->token);
	concert_free(st);
	return rc;
}

PGconn *it_db(const char *uri)
{
	char base[IT_URI_MAX];
	snprintf(base, sizeof(base), "%s", getenv("CONCERT_TEST_PG_URI"));
	PGconn *db = PQconnectdb(base);
	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "checker cannot connect: %s", PQerrorMessage(db));
		exit(1);
	}
	char schema[128];
	snprintf(schema, sizeof(schema), "%.*s", (int)strcspn(it_schema_of(uri), "&"),
		 it_schema_of(uri));
	const char *params[] = { schema };
	PQclear(PQexecParams(db, "SELECT set_config('search_path', $1, false)", 1, NULL, params,
			     NULL, NULL, 0));
	return db;
}

int64_t it_db_int(PGconn *db, const char *sql)
{
	PGresult *res = PQexec(db, sql);
	int64_t v = -1;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	else
		it_fail(__FILE__, __LINE__, "checker query failed: %s\n  %s", PQerrorMessage(db), sql);
	PQclear(res);
	return v;
}

void it_check_invariants(PGconn *db)
{
	/* A seat RESERVED has exactly one confirmed reservation, which names it. */
	IT_CHECK(it_db_int(db,
		"SELECT count(*) FROM concert_seats s WHERE s.state = 2 AND (SELECT count(*) "
		"FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id "
		"WHERE rs.schedule_id = s.schedule_id AND rs.seat_no = s.seat_no AND rs.confirmed "
		"AND r.state = 1 AND r.id = s.reservation_id) <> 1") == 0,
		"reserved seats without exactly one confirmed reservation");
	/* No seat in two confirmed reservations; every confirmed one's seats RESERVED by it. */
	IT_CHECK(it_db_int(db,
		"SELECT count(*) FROM (SELECT rs.schedule_id, rs.seat_no FROM reservation_seats rs "
		"JOIN reservations r ON r.id = rs.reservation_id WHERE r.state = 1 "
		"GROUP BY 1, 2 HAVING count(*) > 1) twice") == 0, "a seat sold twice");
	IT_CHECK(it_db_int(db,
		"SELECT count(*) FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id "
		"WHERE r.state = 1 AND NOT EXISTS (SELECT 1 FROM concert_seats s WHERE "
		"s.schedule_id = rs.schedule_id AND s.seat_no = rs.seat_no AND s.state = 2 "
		"AND s.reservation_id = r.id)") == 0, "confirmed reservation whose seat is not its");
	/* Exactly one payment per reservation, of its amount, and its PAYMENT tx. */
	IT_CHECK(it_db_int(db,
		"SELECT count(*) FROM reservations r WHERE (SELECT count(*) FROM payments p "
		"WHERE p.reservation_id = r.id AND p.amount = r.amount AND p.user_id = r.user_id) <> 1 "
		"OR (SELECT count(*) FROM wallet_transactions t WHERE t.ref_id = r.id AND t.kind = 2 "
		"AND t.amount = -r.amount) <> 1") == 0, "reservation without exactly one payment");
	/* A refund for each cancelled reservation and none for confirmed ones. */
	IT_CHECK(it_db_int(db,
		"SELECT count(*) FROM reservations r WHERE (SELECT count(*) FROM wallet_transactions t "
		"WHERE t.ref_id = r.id AND t.kind = 3 AND t.amount = r.amount) <> "
		"CASE WHEN r.state = 2 THEN 1 ELSE 0 END") == 0, "refunds do not match cancellations");
	/* Wallets: never negative, always the sum of their transactions. */
	IT_CHECK(it_db_int(db,
		"SELECT count(*) FROM wallets w WHERE w.balance < 0 OR w.balance <> "
		"(SELECT coalesce(sum(amount), 0) FROM wallet_transactions t WHERE t.user_id = w.user_id)")
		== 0, "wallet balance differs from its transactions");
	/* Money conserved to the unit. */
	IT_CHECK(it_db_int(db,
		"SELECT (SELECT coalesce(sum(balance), 0) FROM wallets) "
		"- (SELECT coalesce(sum(amount), 0) FROM wallet_transactions)") == 0,
		"balances do not add up to charges - payments + refunds");
	/* No live hold shares a seat with another live hold or a reservation. */
	IT_CHECK(it_db_int(db,
		"SELECT count(*) FROM concert_seats s WHERE s.state = 1 AND NOT EXISTS (SELECT 1 "
		"FROM seat_holds h WHERE h.id = s.hold_id AND s.seat_no = ANY (h.seat_nos))") == 0,
		"held seat not in its hold");
}
