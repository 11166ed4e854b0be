/*
 * With the store and the queue in one PostgreSQL schema, the store checks
 * the queue token inside the hold's and the payment's own statement (and
 * the payment ends it): one round trip each. What the caller sees must not
 * change: the same scenario runs on an engine whose queue URI is spelled
 * differently (so the store does not treat the queue as its own and the
 * engine asks the queue first, as with any other queue backend), and every
 * answer must match — waiting positions, admission on the way, a token
 * used up by a payment, a repeat with the idempotency key after that, a
 * token for another concert, an expired token.
 */
#define _GNU_SOURCE
#include <string.h>

#include "pg_itest.h"

#define ACTIVE_TTL (30 * IT_MINUTE)

typedef struct outcome {
	int rc[16];
	int64_t position_waiting;   /* B's position while A is ACTIVE */
	int32_t state_after_pay;    /* A's token after the payment */
	int same_payment;           /* the repeat with the key answered the original */
} outcome;

static int enter(concert_engine *e, char *token, const char *user, int64_t concert,
		 int64_t *position)
{
	concert_queue_status *st = NULL;
	int rc = concert_queue_enter(e, &st, user, concert);
	if (rc == 0) {
		snprintf(token, CONCERT_TOKEN_MAX + 1, "%s", st->token);
		if (position)
			*position = st->position;
	}
	concert_free(st);
	return rc;
}

static int hold(concert_engine *e, int64_t *hold_id, const char *token, int64_t schedule,
		int32_t seat)
{
	concert_hold *h = NULL;
	int rc = concert_hold_seats(e, &h, token, schedule, &seat, 1);
	if (rc == 0 && hold_id)
		*hold_id = h->id;
	concert_free(h);
	return rc;
}

/* The scenario, with users named after `tag`; every answer into *out. */
static void scenario(concert_engine *e, it_clock *clock, const char *tag, outcome *out)
{
	char user_a[32], user_b[32], user_c[32];
	char token_a[CONCERT_TOKEN_MAX + 1], token_b[CONCERT_TOKEN_MAX + 1];
	char token_c[CONCERT_TOKEN_MAX + 1];
	snprintf(user_a, sizeof(user_a), "%s-a", tag);
	snprintf(user_b, sizeof(user_b), "%s-b", tag);
	snprintf(user_c, sizeof(user_c), "%s-c", tag);
	it_venue v, other;
	it_make_venue(e, &v, 4, 100);
	it_make_venue(e, &other, 1, 100);
	int n = 0;
	int64_t hold_a = 0, hold_b = 0, position = 0;
	out->rc[n++] = concert_wallet_charge(e, NULL, user_a, 1000, NULL);
	out->rc[n++] = concert_wallet_charge(e, NULL, user_b, 1000, NULL);
	/* A is admitted (max_active 1), B waits behind it. */
	out->rc[n++] = enter(e, token_a, user_a, v.concert_id, NULL);
	out->rc[n++] = enter(e, token_b, user_b, v.concert_id, &position);
	/* A waiting token holds nothing; a token only holds in its concert. */
	out->rc[n++] = hold(e, NULL, token_b, v.schedule_id, 1);
	out->rc[n++] = hold(e, NULL, token_a, other.schedule_id, 1);
	out->rc[n++] = hold(e, &hold_a, token_a, v.schedule_id, 1);
	concert_payment *first = NULL, *again = NULL;
	out->rc[n++] = concert_pay(e, &first, token_a, hold_a, "key-a");
	concert_queue_status *st = NULL;
	if (concert_queue_status_get(e, &st, token_a) == 0)
		out->state_after_pay = st->state;
	concert_free(st);
	/* Used up by the payment: no more holds; the key still answers. */
	out->rc[n++] = hold(e, NULL, token_a, v.schedule_id, 2);
	out->rc[n++] = concert_pay(e, &again, token_a, hold_a, "key-a");
	out->same_payment = first && again && first->payment_id == again->payment_id &&
			    first->reservation_id == again->reservation_id;
	concert_free(first);
	concert_free(again);
	/* A's seat is gone; B is admitted on the way, by its own hold. */
	out->rc[n++] = hold(e, NULL, token_b, v.schedule_id, 1);
	out->rc[n++] = hold(e, &hold_b, token_b, v.schedule_id, 2);
	out->rc[n++] = concert_pay(e, NULL, token_b, hold_b, NULL);
	/* C is admitted once B is done, then outlives its active_ttl. */
	out->rc[n++] = enter(e, token_c, user_c, v.concert_id, NULL);
	atomic_fetch_add(&clock->now, ACTIVE_TTL + 1);
	out->rc[n++] = hold(e, NULL, token_c, v.schedule_id, 3);
	atomic_fetch_sub(&clock->now, ACTIVE_TTL + 1);
	out->position_waiting = position;
	IT_CHECK(n <= (int)(sizeof(out->rc) / sizeof(out->rc[0])), "too many steps");
}

int main(void)
{
	char uri[IT_URI_MAX], apart[IT_URI_MAX + 64];
	it_uri(uri, "token_in_store", 2);
	/* The same database spelled differently: the store cannot tell the
	 * queue is its own, so the engine asks the queue as it would Redis. */
	snprintf(apart, sizeof(apart), "%s&application_name=concert-queue", uri);
	it_clock *clock = it_clock_new();
	concert_engine *shared = it_queue_engine(uri, uri, clock, 1, 10 * IT_MINUTE, ACTIVE_TTL);
	concert_engine *separate = it_queue_engine(uri, apart, clock, 1, 10 * IT_MINUTE, ACTIVE_TTL);

	outcome in_store = { { 0 }, 0, 0, 0 }, asked = { { 0 }, 0, 0, 0 };
	scenario(shared, clock, "shared", &in_store);
	scenario(separate, clock, "separate", &asked);

	static const int want[] = { 0, 0, 0, 0, CONCERT_ENOT_ACTIVE, CONCERT_ETOKEN, 0, 0,
		CONCERT_EEXPIRED, 0, CONCERT_ESEAT_UNAVAILABLE, 0, 0, 0, CONCERT_EEXPIRED };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		IT_CHECK(asked.rc[i] == want[i], "step %zu, queue asked: %s, expected %s", i,
			 concert_error_name(asked.rc[i]), concert_error_name(want[i]));
		IT_CHECK(in_store.rc[i] == want[i], "step %zu, token in the store: %s, expected %s",
			 i, concert_error_name(in_store.rc[i]), concert_error_name(want[i]));
	}
	IT_CHECK(in_store.position_waiting == 1 && asked.position_waiting == 1,
		 "waiting positions %lld and %lld, expected 1", (long long)in_store.position_waiting,
		 (long long)asked.position_waiting);
	IT_CHECK(in_store.state_after_pay == CONCERT_QUEUE_DONE &&
		 asked.state_after_pay == CONCERT_QUEUE_DONE,
		 "token after the payment: %d and %d, expected DONE", in_store.state_after_pay,
		 asked.state_after_pay);
	IT_CHECK(in_store.same_payment && asked.same_payment,
		 "the repeat with the key did not answer the original payment");

	PGconn *db = it_db(uri);
	it_check_invariants(db);
	PQfinish(db);
	concert_engine_close(separate);
	concert_engine_close(shared);
	return it_finish("test_pg_token_in_store");
}
