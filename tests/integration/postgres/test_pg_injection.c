/*
 * Injection: hostile strings (quotes, "'; DROP TABLE", array and format
 * syntax, backslashes, control characters, multi-byte UTF-8, a NUL inside,
 * 10 KB) in every string field — title, venue, grade, user id, idempotency
 * key — are stored and returned byte-exact, or refused with CONCERT_EINVAL;
 * never executed. Through the engine, and straight through the backend's
 * vtable where the engine's own length checks would hide the backend.
 */
#define _GNU_SOURCE
#include <string.h>

#include "core/internal.h"
#include "pg_itest.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const hostile[] = {
	"'; DROP TABLE concerts; --",
	"\"); DELETE FROM wallets; --",
	"Robert'); DROP TABLE seat_holds;--",
	"' OR '1'='1",
	"back\\slash \\' \\\" \\\\ end",
	"{1,2,3}",
	"{\"a\",\"b\"}",
	"NULL",
	"a,b,c",
	"$1 $2 %s %n %d",
	"\t\r\n\v\f",
	"\xec\xbd\x98\xec\x84\x9c\xed\x8a\xb8 \xf0\x9f\x8e\xb5",
	"E'\\x00' /* c */ -- x",
	"(SELECT 1)",
};

/* Short ones fit a grade (15 bytes). */
static const char *const hostile_grades[] = {
	"'", "\"", "\\", "{}", "{\"}", ",", "NULL", "' OR 1=1", "a\\\"b", "%s", "\t\n",
};

static void check_catalog(concert_engine *e)
{
	for (size_t i = 0; i < N(hostile); i++) {
		int64_t id = 0, schedule = 0;
		concert_time now = concert_engine_now(e);
		IT_RC(concert_concert_add(e, &id, hostile[i], now - IT_DAY, now + IT_DAY), 0);
		concert_concert *c = NULL;
		IT_RC(concert_concert_get(e, &c, id), 0);
		IT_CHECK(c && strcmp(c->title, hostile[i]) == 0, "title %zu not byte-exact", i);
		concert_free(c);
		IT_RC(concert_schedule_add(e, &schedule, id, now, hostile[i]), 0);
		concert_schedule *s = NULL;
		IT_RC(concert_schedule_get(e, &s, schedule), 0);
		IT_CHECK(s && strcmp(s->venue, hostile[i]) == 0, "venue %zu not byte-exact", i);
		concert_free(s);
	}
	int64_t id = 0, schedule = 0;
	concert_time now = concert_engine_now(e);
	IT_RC(concert_concert_add(e, &id, "grades", now - IT_DAY, now + IT_DAY), 0);
	IT_RC(concert_schedule_add(e, &schedule, id, now, "hall"), 0);
	concert_seat_spec specs[N(hostile_grades)];
	for (size_t i = 0; i < N(hostile_grades); i++)
		specs[i] = (concert_seat_spec){ (int32_t)i + 1, 100, hostile_grades[i] };
	IT_RC(concert_seats_add(e, schedule, specs, N(specs)), 0);
	concert_seat_list *seats = NULL;
	IT_RC(concert_seats_list(e, &seats, schedule), 0);
	IT_CHECK(seats && seats->count == N(hostile_grades), "seats missing");
	for (size_t i = 0; seats && i < seats->count; i++)
		IT_CHECK(strcmp(seats->items[i].grade, hostile_grades[i]) == 0,
			 "grade %zu '%s' came back as '%s'", i, hostile_grades[i], seats->items[i].grade);
	concert_free(seats);

	/* A NUL ends a C string: what follows it is not part of the value. */
	const char with_nul[] = "before\0'; DROP TABLE concerts; --";
	IT_RC(concert_concert_add(e, &id, with_nul, now - IT_DAY, now + IT_DAY), 0);
	concert_concert *c = NULL;
	IT_RC(concert_concert_get(e, &c, id), 0);
	IT_CHECK(c && strcmp(c->title, "before") == 0, "title with a NUL came back wrong");
	concert_free(c);
}

static void check_users(concert_engine *e)
{
	it_venue v;
	it_make_venue(e, &v, (int32_t)N(hostile), 1000);
	for (size_t i = 0; i < N(hostile); i++) {
		const char *user = hostile[i];
		char token[CONCERT_TOKEN_MAX + 1];
		concert_queue_status *st = NULL;
		IT_RC(concert_queue_enter(e, &st, user, v.concert_id), 0);
		IT_CHECK(st && strcmp(st->user_id, user) == 0, "queue user %zu not byte-exact", i);
		concert_free(st);
		IT_RC(it_token(e, token, sizeof(token), user, v.concert_id), 0);
		int64_t balance = 0;
		IT_RC(concert_wallet_charge(e, &balance, user, 5000, hostile[N(hostile) - 1 - i]), 0);
		IT_RC(concert_wallet_charge(e, &balance, user, 5000, hostile[N(hostile) - 1 - i]), 0);
		IT_CHECK(balance == 5000, "idempotent charge with a hostile key: balance %lld",
			 (long long)balance);
		int32_t seat = (int32_t)i + 1;
		concert_hold *hold = NULL;
		IT_RC(concert_hold_seats(e, &hold, token, v.schedule_id, &seat, 1), 0);
		IT_CHECK(hold && strcmp(hold->user_id, user) == 0, "hold user %zu not byte-exact", i);
		concert_payment *p = NULL, *again = NULL;
		if (hold) {
			IT_RC(concert_pay(e, &p, token, hold->id, user), 0);
			IT_RC(concert_pay(e, &again, token, hold->id, user), 0);
		}
		IT_CHECK(p && again && p->payment_id == again->payment_id,
			 "payment with a hostile key repeated");
		concert_reservation *r = NULL;
		if (p)
			IT_RC(concert_reservation_get(e, &r, p->reservation_id), 0);
		IT_CHECK(r && strcmp(r->user_id, user) == 0, "reservation user %zu not byte-exact", i);
		IT_RC(concert_wallet_balance(e, &balance, user), 0);
		IT_CHECK(balance == 4000, "balance %lld after paying 1000", (long long)balance);
		concert_free(r);
		concert_free(p);
		concert_free(again);
		concert_free(hold);
	}
}

static void silent(void *ctx, int level, const char *message)
{
	(void)ctx;
	(void)level;
	(void)message;
}

/* Refused, not stored: too long (past the engine, the backend itself) or
 * not valid UTF-8. */
static void check_refused(const char *uri, concert_engine *e)
{
	static char big[10 * 1024 + 1];
	memset(big, '\'', sizeof(big) - 1);
	int64_t id = 0;
	concert_time now = concert_engine_now(e);
	IT_RC(concert_concert_add(e, &id, big, now, now + IT_DAY), CONCERT_EINVAL);
	IT_RC(concert_wallet_charge(e, NULL, big, 1, NULL), CONCERT_EINVAL);
	IT_RC(concert_concert_add(e, &id, "bad \xff\xfe utf-8", now, now + IT_DAY), CONCERT_EINVAL);
	IT_RC(concert_wallet_charge(e, NULL, "user-\xc3", 1, NULL), CONCERT_EINVAL);

	const concert_store_backend *store = concert_registry_store(uri);
	IT_CHECK(store != NULL, "no postgresql store backend registered");
	if (!store)
		return;
	it_clock *clock = it_clock_new();
	concert_backend_env env = { CONCERT_BACKEND_ENV_VERSION, it_clock_read, clock, silent, NULL, 0 };
	void *ctx = NULL;
	IT_RC(store->open(&ctx, uri, &env), 0);
	if (!ctx)
		return;
	IT_RC(store->concert_add(ctx, &id, big, now, now + IT_DAY), CONCERT_EINVAL);
	IT_RC(store->charge(ctx, NULL, big, 1, NULL, now), CONCERT_EINVAL);
	IT_RC(store->charge(ctx, NULL, "short-user", 1, big, now), CONCERT_EINVAL);
	int64_t schedule = 0;
	IT_RC(store->concert_add(ctx, &id, "refusals", now - IT_DAY, now + IT_DAY), 0);
	IT_RC(store->schedule_add(ctx, &schedule, id, now, big), CONCERT_EINVAL);
	IT_RC(store->schedule_add(ctx, &schedule, id, now, "hall"), 0);
	concert_seat_spec spec = { 1, 100, big };
	IT_RC(store->seats_add(ctx, schedule, &spec, 1), CONCERT_EINVAL);
	int64_t balance = -1;
	IT_RC(store->balance(ctx, &balance, "short-user"), 0);
	IT_CHECK(balance == 0, "a refused charge left a balance of %lld", (long long)balance);
	store->close(ctx);
}

int main(void)
{
	char uri[IT_URI_MAX];
	it_uri(uri, "injection", 2);
	it_clock *clock = it_clock_new();
	concert_engine *e = it_engine(uri, clock, 10 * IT_MINUTE);
	check_catalog(e);
	check_users(e);
	check_refused(uri, e);
	PGconn *db = it_db(uri);
	it_check_invariants(db);
	/* Every table is still there and still holds what the tests wrote. */
	IT_CHECK(it_db_int(db, "SELECT count(*) FROM concerts") >= (int64_t)N(hostile),
		 "concerts lost");
	IT_CHECK(it_db_int(db, "SELECT count(*) FROM wallets") == (int64_t)N(hostile),
		 "wallets lost");
	IT_CHECK(it_db_int(db, "SELECT count(*) FROM seat_holds") == (int64_t)N(hostile),
		 "holds lost");
	PQfinish(db);
	concert_engine_close(e);
	return it_finish("injection");
}
