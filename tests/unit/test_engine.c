/*
 * The engine's own behaviour through the public API, on the memory backend:
 * option handling, argument checks (bad input changes nothing), token
 * authorisation, idempotent repeats, statistics.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <unistd.h>

#include "concert.h"
#include "concert/sys/store.h"
#include "concert/sys/queue.h"
#include "concert/sys/lock.h"
#include "core/internal.h"
#include "tmpdir.h"

#define T0 1700000000000LL
#define HOUR (3600 * 1000LL)

typedef struct fixture {
	concert_engine *engine;
	concert_time now;
	int64_t concert_id;
	int64_t schedule_id;
} fixture;

static concert_time fixture_clock(void *ctx)
{
	return ((fixture *)ctx)->now;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	concert_options opts = CONCERT_OPTIONS_INIT;
	static const unsigned char secret[] = "test secret";
	f->now = T0;
	opts.clock = fixture_clock;
	opts.clock_ctx = f;
	opts.secret = secret;
	opts.secret_len = sizeof(secret) - 1;
	opts.max_active = 2;
	assert_int_equal(concert_engine_open(&f->engine, &opts), 0);
	assert_int_equal(concert_concert_add(f->engine, &f->concert_id, "Test", T0, T0 + 24 * HOUR), 0);
	assert_int_equal(concert_schedule_add(f->engine, &f->schedule_id, f->concert_id, T0 + 48 * HOUR, "Hall"), 0);
	concert_seat_spec seats[10];
	for (int i = 0; i < 10; i++)
		seats[i] = (concert_seat_spec){ i + 1, 1000 * (i + 1), "R" };
	assert_int_equal(concert_seats_add(f->engine, f->schedule_id, seats, 10), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	concert_engine_close(f->engine);
	free(f);
	return 0;
}

/* Enters and returns the token to present (ACTIVE when admitted). */
static void enter(fixture *f, const char *user, char token[CONCERT_TOKEN_MAX + 1], int expect_state)
{
	concert_queue_status *st;
	assert_int_equal(concert_queue_enter(f->engine, &st, user, f->concert_id), 0);
	concert_queue_status *now;
	assert_int_equal(concert_queue_status_get(f->engine, &now, st->token), 0);
	assert_int_equal(now->state, expect_state);
	memcpy(token, now->token, CONCERT_TOKEN_MAX + 1);
	concert_free(now);
	concert_free(st);
}

static void assert_seats_available(fixture *f, int64_t expected)
{
	concert_schedule *s;
	assert_int_equal(concert_schedule_get(f->engine, &s, f->schedule_id), 0);
	assert_int_equal(s->available_seats, expected);
	concert_free(s);
}

static void test_options_and_open(void **state)
{
	(void)state;
	concert_options opts;
	concert_engine *e = (concert_engine *)1;
	assert_int_equal(concert_options_init(&opts, 999), CONCERT_EVERSION);
	assert_int_equal(concert_options_init(NULL, CONCERT_OPTIONS_VERSION), CONCERT_EINVAL);
	assert_int_equal(concert_options_init(&opts, CONCERT_OPTIONS_VERSION), 0);
	assert_int_equal(concert_engine_open(NULL, &opts), CONCERT_EINVAL);

	opts.store = "nosuch://x";
	assert_int_equal(concert_engine_open(&e, &opts), CONCERT_EINVAL);
	assert_null(e);
	assert_non_null(strstr(concert_error_last()->message, "nosuch"));

	opts.store = "memory:relative/dir";
	assert_int_equal(concert_engine_open(&e, &opts), CONCERT_EINVAL);
	opts.store = "memory:/tmp?fsync=sometimes";
	assert_int_equal(concert_engine_open(&e, &opts), CONCERT_EINVAL);
	opts.store = NULL;
	opts.lock = "nosuch://127.0.0.1:1";
	assert_int_equal(concert_engine_open(&e, &opts), CONCERT_EINVAL);
	opts.lock = NULL;
	opts.hold_ttl = 10 * HOUR;
	opts.hold_max_lifetime = HOUR;
	assert_int_equal(concert_engine_open(&e, &opts), CONCERT_EINVAL);

	opts.version = 7;
	assert_int_equal(concert_engine_open(&e, &opts), CONCERT_EVERSION);

	assert_int_equal(concert_engine_open(&e, NULL), 0);
	assert_int_equal(concert_engine_health(e), 0);
	concert_engine_close(e);
	concert_engine_close(NULL);
}

static void test_error_text(void **state)
{
	(void)state;
	assert_string_equal(concert_error_name(CONCERT_ESEAT_UNAVAILABLE), "seat_unavailable");
	assert_string_equal(concert_error_name(CONCERT_EFUNDS), "insufficient_funds");
	assert_string_equal(concert_strerror(0), "success");
	assert_string_equal(concert_strerror(-1000), "unknown error");
	assert_string_equal(concert_error_name(5), "unknown");
	for (int c = 0; c > -CONCERT_ERROR_COUNT; c--)
		assert_string_not_equal(concert_strerror(c), "unknown error");
	assert_string_equal(concert_version(), CONCERT_VERSION);
}

static void test_catalog_bad_input(void **state)
{
	fixture *f = *state;
	int64_t id = 0;
	char long_title[CONCERT_TITLE_MAX + 2];
	memset(long_title, 'x', sizeof(long_title) - 1);
	long_title[sizeof(long_title) - 1] = '\0';

	assert_int_equal(concert_concert_add(f->engine, &id, NULL, T0, T0 + 1), CONCERT_EINVAL);
	assert_int_equal(concert_concert_add(f->engine, &id, "", T0, T0 + 1), CONCERT_EINVAL);
	assert_int_equal(concert_concert_add(f->engine, &id, long_title, T0, T0 + 1), CONCERT_EINVAL);
	assert_non_null(strstr(concert_error_last()->message, "title"));
	assert_int_equal(concert_concert_add(f->engine, &id, "x", T0, T0), CONCERT_EINVAL);
	assert_int_equal(concert_concert_add(f->engine, NULL, "x", T0, T0 + 1), CONCERT_EINVAL);
	assert_int_equal(concert_schedule_add(f->engine, &id, 999, T0, "v"), CONCERT_ENOTFOUND);
	assert_int_equal(concert_schedule_add(f->engine, &id, -1, T0, "v"), CONCERT_EINVAL);

	concert_seat_spec dup[] = { { 20, 100, "R" }, { 20, 100, "R" } };
	concert_seat_spec bad_price[] = { { 21, 0, "R" } };
	concert_seat_spec bad_grade[] = { { 22, 10, "GRADE-TOO-LONG-XX" } };
	concert_seat_spec existing[] = { { 23, 10, "R" }, { 5, 10, "R" } };
	assert_int_equal(concert_seats_add(f->engine, f->schedule_id, dup, 2), CONCERT_EINVAL);
	assert_int_equal(concert_seats_add(f->engine, f->schedule_id, bad_price, 1), CONCERT_EINVAL);
	assert_int_equal(concert_seats_add(f->engine, f->schedule_id, bad_grade, 1), CONCERT_EINVAL);
	assert_int_equal(concert_seats_add(f->engine, f->schedule_id, existing, 2), CONCERT_EEXISTS);
	assert_int_equal(concert_seats_add(f->engine, f->schedule_id, NULL, 1), CONCERT_EINVAL);

	/* Nothing of the above changed the catalog. */
	concert_concert_list *concerts;
	assert_int_equal(concert_concerts_list(f->engine, &concerts), 0);
	assert_int_equal(concerts->count, 1);
	concert_free(concerts);
	concert_seat_list *seats;
	assert_int_equal(concert_seats_list(f->engine, &seats, f->schedule_id), 0);
	assert_int_equal(seats->count, 10);
	concert_free(seats);
	assert_int_equal(concert_seats_list(f->engine, &seats, 12345), CONCERT_ENOTFOUND);
	assert_null(seats);
}

static void test_wallet_bad_input(void **state)
{
	fixture *f = *state;
	int64_t balance = -1;
	char long_user[CONCERT_USER_ID_MAX + 2];
	memset(long_user, 'u', sizeof(long_user) - 1);
	long_user[sizeof(long_user) - 1] = '\0';

	assert_int_equal(concert_wallet_charge(f->engine, &balance, "alice", 0, NULL), CONCERT_EINVAL);
	assert_int_equal(concert_wallet_charge(f->engine, &balance, "alice", -5, NULL), CONCERT_EINVAL);
	assert_int_equal(concert_wallet_charge(f->engine, &balance, NULL, 5, NULL), CONCERT_EINVAL);
	assert_int_equal(concert_wallet_charge(f->engine, &balance, "", 5, NULL), CONCERT_EINVAL);
	assert_int_equal(concert_wallet_charge(f->engine, &balance, long_user, 5, NULL), CONCERT_EINVAL);
	assert_int_equal(concert_wallet_charge(f->engine, &balance, "alice", 5, ""), CONCERT_EINVAL);
	assert_int_equal(balance, -1);

	assert_int_equal(concert_wallet_charge(f->engine, &balance, "alice", INT64_MAX - 10, "k1"), 0);
	assert_int_equal(concert_wallet_charge(f->engine, &balance, "alice", 11, "k2"), CONCERT_EOVERFLOW);
	assert_int_equal(concert_wallet_balance(f->engine, &balance, "alice"), 0);
	assert_int_equal(balance, INT64_MAX - 10);
	assert_int_equal(concert_wallet_charge(f->engine, &balance, "alice", 7, "k1"), CONCERT_EIDEMPOTENCY);

	concert_wallet_tx_list *txs;
	assert_int_equal(concert_wallet_history(f->engine, &txs, "alice", 0, 0), CONCERT_EINVAL);
	assert_int_equal(concert_wallet_history(f->engine, &txs, "alice", -1, 10), CONCERT_EINVAL);
	assert_int_equal(concert_wallet_history(f->engine, &txs, "alice", 0, 10), 0);
	assert_int_equal(txs->count, 1);
	concert_free(txs);
}

static void test_tokens_authorise(void **state)
{
	fixture *f = *state;
	char alice[CONCERT_TOKEN_MAX + 1], bob[CONCERT_TOKEN_MAX + 1], carol[CONCERT_TOKEN_MAX + 1];
	int32_t seat[] = { 1 };
	enter(f, "alice", alice, CONCERT_QUEUE_ACTIVE);
	enter(f, "bob", bob, CONCERT_QUEUE_ACTIVE);
	enter(f, "carol", carol, CONCERT_QUEUE_WAITING); /* max_active is 2 */

	assert_int_equal(concert_hold_seats(f->engine, NULL, NULL, f->schedule_id, seat, 1), CONCERT_ETOKEN);
	assert_int_equal(concert_hold_seats(f->engine, NULL, "", f->schedule_id, seat, 1), CONCERT_ETOKEN);
	assert_int_equal(concert_hold_seats(f->engine, NULL, "garbage.token", f->schedule_id, seat, 1), CONCERT_ETOKEN);
	assert_int_equal(concert_hold_seats(f->engine, NULL, carol, f->schedule_id, seat, 1), CONCERT_ENOT_ACTIVE);

	/* A token signed with another secret is forged, whatever it claims. */
	concert_token_claims claims;
	assert_int_equal(concert_queue_validate(f->engine, &claims, alice, f->concert_id), 0);
	assert_string_equal(claims.user_id, "alice");
	char forged[CONCERT_TOKEN_MAX + 1];
	static const unsigned char other[] = "other secret";
	assert_int_equal(concert_token_sign(forged, sizeof(forged), NULL, &claims, other, sizeof(other) - 1), 0);
	assert_int_equal(concert_hold_seats(f->engine, NULL, forged, f->schedule_id, seat, 1), CONCERT_ETOKEN);
	assert_int_equal(concert_queue_validate(f->engine, NULL, alice, f->concert_id + 1), CONCERT_ETOKEN);

	/* Bad seat lists change nothing. */
	int32_t dup[] = { 2, 2 };
	int32_t neg[] = { -1 };
	int32_t many[CONCERT_HOLD_SEATS_MAX + 1];
	for (int i = 0; i <= CONCERT_HOLD_SEATS_MAX; i++)
		many[i] = i + 1;
	assert_int_equal(concert_hold_seats(f->engine, NULL, alice, f->schedule_id, dup, 2), CONCERT_EINVAL);
	assert_int_equal(concert_hold_seats(f->engine, NULL, alice, f->schedule_id, neg, 1), CONCERT_EINVAL);
	assert_int_equal(concert_hold_seats(f->engine, NULL, alice, f->schedule_id, many, CONCERT_HOLD_SEATS_MAX + 1), CONCERT_EINVAL);
	assert_int_equal(concert_hold_seats(f->engine, NULL, alice, f->schedule_id, seat, 0), CONCERT_EINVAL);
	assert_seats_available(f, 10);

	/* Holds belong to the token's user. */
	concert_hold *hold;
	assert_int_equal(concert_hold_seats(f->engine, &hold, alice, f->schedule_id, seat, 1), 0);
	assert_string_equal(hold->user_id, "alice");
	assert_int_equal(concert_hold_release(f->engine, bob, hold->id, NULL, 0), CONCERT_EFORBIDDEN);
	assert_int_equal(concert_pay(f->engine, NULL, bob, hold->id, NULL), CONCERT_EFORBIDDEN);
	concert_hold *read;
	assert_int_equal(concert_hold_get(f->engine, &read, bob, hold->id), CONCERT_EFORBIDDEN);
	assert_null(read);
	assert_int_equal(concert_hold_get(f->engine, &read, alice, hold->id), 0);
	assert_int_equal(read->state, CONCERT_HOLD_HELD);
	concert_free(read);

	/* Conflicts name the seats. */
	int32_t both[] = { 1, 2 };
	assert_int_equal(concert_hold_seats(f->engine, NULL, bob, f->schedule_id, both, 2), CONCERT_ESEAT_UNAVAILABLE);
	const concert_error *err = concert_error_last();
	assert_int_equal(err->code, CONCERT_ESEAT_UNAVAILABLE);
	assert_int_equal(err->conflict_count, 1);
	assert_int_equal(err->conflicts[0], 1);
	assert_seats_available(f, 9);
	concert_free(hold);
}

static void test_pay_flow_and_repeat(void **state)
{
	fixture *f = *state;
	char token[CONCERT_TOKEN_MAX + 1];
	int32_t seats[] = { 4, 3 };
	enter(f, "dave", token, CONCERT_QUEUE_ACTIVE);

	concert_hold *hold;
	assert_int_equal(concert_hold_seats(f->engine, &hold, token, f->schedule_id, seats, 2), 0);
	assert_int_equal(hold->seat_count, 2);
	assert_int_equal(hold->seat_nos[0], 3);
	assert_int_equal(hold->amount, 7000);

	assert_int_equal(concert_pay(f->engine, NULL, token, hold->id, "p1"), CONCERT_EFUNDS);
	assert_int_equal(concert_wallet_charge(f->engine, NULL, "dave", 10000, NULL), 0);
	concert_payment *p1, *p2;
	assert_int_equal(concert_pay(f->engine, &p1, token, hold->id, "p1"), 0);
	assert_int_equal(p1->amount, 7000);
	assert_int_equal(p1->balance, 3000);

	/* The token is used up, yet the repeat answers with the same payment. */
	assert_int_equal(concert_queue_validate(f->engine, NULL, token, f->concert_id), CONCERT_EEXPIRED);
	assert_int_equal(concert_pay(f->engine, &p2, token, hold->id, "p1"), 0);
	assert_int_equal(concert_error_last()->code, 0);
	assert_string_equal(concert_error_last()->message, "");
	assert_int_equal(p2->payment_id, p1->payment_id);
	assert_int_equal(p2->reservation_id, p1->reservation_id);
	assert_int_equal(concert_pay(f->engine, NULL, token, hold->id, NULL), CONCERT_EEXPIRED);
	assert_int_equal(concert_pay(f->engine, NULL, token, hold->id, "p2"), CONCERT_EEXPIRED);
	int64_t balance;
	assert_int_equal(concert_wallet_balance(f->engine, &balance, "dave"), 0);
	assert_int_equal(balance, 3000);

	/* Cancel refunds and frees the seats. */
	int64_t refunded;
	assert_int_equal(concert_reservation_cancel(f->engine, &refunded, &balance, "eve", p1->reservation_id), CONCERT_EFORBIDDEN);
	assert_int_equal(concert_reservation_cancel(f->engine, &refunded, &balance, "dave", p1->reservation_id), 0);
	assert_int_equal(refunded, 7000);
	assert_int_equal(balance, 10000);
	assert_seats_available(f, 10);

	concert_audit *audit;
	assert_int_equal(concert_engine_audit(f->engine, &audit), 0);
	assert_int_equal(audit->wallet_mismatches + audit->seat_mismatches + audit->payment_mismatches, 0);
	assert_int_equal(audit->total_balance + audit->total_payments - audit->total_refunds, audit->total_charges);
	concert_free(audit);
	concert_free(p1);
	concert_free(p2);
	concert_free(hold);
}

static void test_expiry_by_clock(void **state)
{
	fixture *f = *state;
	char token[CONCERT_TOKEN_MAX + 1];
	int32_t seat[] = { 9 };
	enter(f, "frank", token, CONCERT_QUEUE_ACTIVE);
	concert_hold *hold;
	assert_int_equal(concert_hold_seats(f->engine, &hold, token, f->schedule_id, seat, 1), 0);
	assert_int_equal(hold->expires_at, f->now + 5 * 60 * 1000);
	assert_int_equal(concert_wallet_charge(f->engine, NULL, "frank", 100000, NULL), 0);

	f->now = hold->expires_at;
	assert_seats_available(f, 10);
	assert_int_equal(concert_pay(f->engine, NULL, token, hold->id, NULL), CONCERT_EEXPIRED);

	/* Past active_until the token itself is expired. */
	f->now = T0 + 11 * 60 * 1000;
	assert_int_equal(concert_hold_seats(f->engine, NULL, token, f->schedule_id, seat, 1), CONCERT_EEXPIRED);
	concert_queue_status *st;
	assert_int_equal(concert_queue_status_get(f->engine, &st, token), CONCERT_EEXPIRED);
	assert_null(st);
	concert_free(hold);
}

static void test_stats_count_outcomes(void **state)
{
	fixture *f = *state;
	uint64_t ok = concert_engine_stat(f->engine, CONCERT_OP_CHARGE, 0);
	uint64_t bad = concert_engine_stat(f->engine, CONCERT_OP_CHARGE, CONCERT_EINVAL);
	assert_int_equal(concert_wallet_charge(f->engine, NULL, "gina", 5, NULL), 0);
	assert_int_equal(concert_wallet_charge(f->engine, NULL, "gina", -5, NULL), CONCERT_EINVAL);
	assert_int_equal(concert_engine_stat(f->engine, CONCERT_OP_CHARGE, 0), ok + 1);
	assert_int_equal(concert_engine_stat(f->engine, CONCERT_OP_CHARGE, CONCERT_EINVAL), bad + 1);
	assert_int_equal(concert_engine_stat(f->engine, CONCERT_OP_COUNT, 0), 0);
	assert_int_equal(concert_engine_stat(f->engine, CONCERT_OP_CHARGE, 3), 0);
	assert_string_equal(concert_op_name(CONCERT_OP_PAY), "pay");
	assert_string_equal(concert_op_name(-1), "unknown");
	/* A success clears the previous error. */
	assert_int_equal(concert_error_last()->code, CONCERT_EINVAL);
	assert_int_equal(concert_wallet_balance(f->engine, &(int64_t){ 0 }, "gina"), 0);
	assert_int_equal(concert_error_last()->code, 0);
}

static void test_queue_positions_and_leave(void **state)
{
	fixture *f = *state;
	char a[CONCERT_TOKEN_MAX + 1], b[CONCERT_TOKEN_MAX + 1];
	enter(f, "q1", a, CONCERT_QUEUE_ACTIVE);
	enter(f, "q2", b, CONCERT_QUEUE_ACTIVE);
	concert_queue_status *w1, *w2, *again;
	assert_int_equal(concert_queue_enter(f->engine, &w1, "q3", f->concert_id), 0);
	assert_int_equal(concert_queue_enter(f->engine, &w2, "q4", f->concert_id), 0);
	assert_int_equal(w1->position, 1);
	assert_int_equal(w2->position, 2);
	assert_true(w2->estimated_wait_seconds >= w1->estimated_wait_seconds);
	assert_int_equal(concert_queue_enter(f->engine, &again, "q4", f->concert_id), 0);
	assert_int_equal(again->created, 0);
	assert_int_equal(again->token_id, w2->token_id);
	assert_string_equal(again->token, w2->token);
	concert_free(again);

	uint64_t waiting, active;
	assert_int_equal(concert_queue_counts(f->engine, f->concert_id, &waiting, &active), 0);
	assert_int_equal(waiting, 2);
	assert_int_equal(active, 2);
	assert_int_equal(concert_queue_counts(f->engine, 0, &waiting, &active), CONCERT_EINVAL);

	assert_int_equal(concert_queue_leave(f->engine, a), 0);
	assert_int_equal(concert_queue_leave(f->engine, a), CONCERT_EEXPIRED);
	assert_int_equal(concert_queue_status_get(f->engine, &again, w1->token), 0);
	assert_int_equal(again->state, CONCERT_QUEUE_ACTIVE);
	concert_free(again);
	assert_int_equal(concert_queue_status_get(f->engine, &again, w2->token), 0);
	assert_int_equal(again->position, 1);
	concert_free(again);
	assert_int_equal(concert_queue_counts(f->engine, f->concert_id, &waiting, NULL), 0);
	assert_int_equal(waiting, 1);
	assert_int_equal(concert_queue_enter(f->engine, &again, "q5", 4242), CONCERT_ENOTFOUND);
	concert_free(w1);
	concert_free(w2);
}

/* --- the log callback honours log_level ------------------------------ */

static int log_lines, log_worst;

static void count_log(void *ctx, int level, const char *message)
{
	(void)ctx;
	assert_non_null(message);
	log_lines++;
	if (level > log_worst)
		log_worst = level;
}

static void test_log_level(void **state)
{
	(void)state;
	for (int level = CONCERT_LOG_ERROR; level <= CONCERT_LOG_DEBUG; level += CONCERT_LOG_DEBUG) {
		concert_options opts = CONCERT_OPTIONS_INIT;
		concert_engine *e;
		opts.log = count_log;
		opts.log_level = level;
		log_lines = log_worst = 0;
		assert_int_equal(concert_engine_open(&e, &opts), 0);
		/* A refused call is reported at DEBUG level. */
		assert_int_equal(concert_wallet_charge(e, NULL, "u", -1, NULL), CONCERT_EINVAL);
		concert_engine_close(e);
		if (level == CONCERT_LOG_ERROR) {
			assert_int_equal(log_lines, 0);
		} else {
			assert_int_equal(log_lines, 1);
			assert_int_equal(log_worst, CONCERT_LOG_DEBUG);
		}
	}
}

/* --- backend registration: a call-counting store over the memory one --- */

static concert_store_backend counting_store;
static int counting_holds, counting_concert_gets;

static int counting_concert_get(void *ctx, concert_concert **out, int64_t concert_id)
{
	counting_concert_gets++;
	return concert_memory_store_backend.concert_get(ctx, out, concert_id);
}

static int counting_open(void **out_ctx, const char *uri, const concert_backend_env *env)
{
	assert_string_equal(uri, "counting:");
	return concert_memory_store_backend.open(out_ctx, "memory:", env);
}

static int counting_hold_seats(void *ctx, concert_hold **out, const concert_hold_request *req)
{
	counting_holds++;
	return concert_memory_store_backend.hold_seats(ctx, out, req);
}

static void test_backend_registration(void **state)
{
	(void)state;
	concert_store_backend bad = concert_memory_store_backend;
	bad.version = 99;
	assert_int_equal(concert_sys_store_register(&bad), CONCERT_EVERSION);
	bad = concert_memory_store_backend;
	bad.scheme = "broken";
	bad.pay = NULL;
	assert_int_equal(concert_sys_store_register(&bad), CONCERT_EINVAL);
	assert_int_equal(concert_sys_store_register(NULL), CONCERT_EINVAL);
	assert_int_equal(concert_sys_store_register(&concert_memory_store_backend), CONCERT_EEXISTS);
	concert_queue_backend bad_queue = concert_memory_queue_backend;
	bad_queue.scheme = "";
	assert_int_equal(concert_sys_queue_register(&bad_queue), CONCERT_EINVAL);
	concert_lock_backend bad_lock = { 2, "x", NULL, NULL, NULL, NULL, NULL };
	assert_int_equal(concert_sys_lock_register(&bad_lock), CONCERT_EVERSION);
	bad_lock.version = CONCERT_LOCK_BACKEND_VERSION;
	assert_int_equal(concert_sys_lock_register(&bad_lock), CONCERT_EINVAL);

	/* A third-party store: the engine finds it by scheme and calls it. */
	counting_store = concert_memory_store_backend;
	counting_store.scheme = "counting";
	counting_store.open = counting_open;
	counting_store.hold_seats = counting_hold_seats;
	counting_store.concert_get = counting_concert_get;
	assert_int_equal(concert_sys_store_register(&counting_store), 0);
	assert_int_equal(concert_sys_store_register(&counting_store), CONCERT_EEXISTS);

	fixture f = { .now = T0 };
	concert_options opts = CONCERT_OPTIONS_INIT;
	opts.store = "counting:";
	opts.queue = "memory:";
	opts.clock = fixture_clock;
	opts.clock_ctx = &f;
	assert_int_equal(concert_engine_open(&f.engine, &opts), 0);
	assert_int_equal(concert_concert_add(f.engine, &f.concert_id, "Counted", T0, T0 + HOUR), 0);
	assert_int_equal(concert_schedule_add(f.engine, &f.schedule_id, f.concert_id, T0, "Hall"), 0);
	concert_seat_spec seat = { 1, 100, "R" };
	assert_int_equal(concert_seats_add(f.engine, f.schedule_id, &seat, 1), 0);
	char token[CONCERT_TOKEN_MAX + 1];
	enter(&f, "counted", token, CONCERT_QUEUE_ACTIVE);
	int32_t seats[] = { 1 };
	assert_int_equal(concert_hold_seats(f.engine, NULL, token, f.schedule_id, seats, 1), 0);
	assert_int_equal(concert_hold_seats(f.engine, NULL, token, f.schedule_id, seats, 1),
			 CONCERT_ESEAT_UNAVAILABLE);
	assert_int_equal(counting_holds, 2);
	/* Bad input never reaches the backend. */
	assert_int_equal(concert_hold_seats(f.engine, NULL, token, f.schedule_id, seats, 0), CONCERT_EINVAL);
	assert_int_equal(counting_holds, 2);

	/* A concert known to exist is not looked up again on every enter;
	 * an unknown one is asked each time and never remembered. */
	int gets = counting_concert_gets;
	concert_queue_status *st;
	for (int i = 0; i < 3; i++) {
		char user[16];
		snprintf(user, sizeof(user), "more-%d", i);
		assert_int_equal(concert_queue_enter(f.engine, &st, user, f.concert_id), 0);
		concert_free(st);
	}
	assert_int_equal(counting_concert_gets, gets);
	assert_int_equal(concert_queue_enter(f.engine, &st, "x", f.concert_id + 256), CONCERT_ENOTFOUND);
	assert_int_equal(concert_queue_enter(f.engine, &st, "x", f.concert_id + 256), CONCERT_ENOTFOUND);
	assert_int_equal(counting_concert_gets, gets + 2);
	concert_engine_close(f.engine);
}

/* --- a store that checks queue tokens itself (store vtable version 2) --- */

static concert_store_backend token_store;
static int token_holds, token_pays, token_answer_not_active;

static int token_store_open(void **out_ctx, const char *uri, const concert_backend_env *env)
{
	assert_string_equal(uri, "tokenstore:");
	return concert_memory_store_backend.open(out_ctx, "memory:", env);
}

static int token_store_queue_shared(void *ctx, const concert_queue_backend *queue, void *queue_ctx)
{
	(void)ctx;
	(void)queue_ctx;
	return queue == &concert_memory_queue_backend;
}

/* Stands for a store whose check found the token not ACTIVE, or one that
 * found it ACTIVE (then the memory store does the hold). */
static int token_store_hold_seats_token(void *ctx, concert_hold **out,
					const concert_hold_request *req, int64_t token_id)
{
	assert_true(token_id > 0);
	token_holds++;
	if (token_answer_not_active)
		return concert_sys_error(CONCERT_ENOT_ACTIVE, "not ACTIVE in the store");
	return concert_memory_store_backend.hold_seats(ctx, out, req);
}

/* Pays without ending the token: the engine must not end it either. */
static int token_store_pay_token(void *ctx, concert_payment **out, const concert_pay_request *req,
				 int64_t token_id)
{
	assert_true(token_id > 0);
	token_pays++;
	return concert_memory_store_backend.pay(ctx, out, req);
}

static void test_store_checks_tokens(void **state)
{
	(void)state;
	/* Version 1 stores still register; the three version 2 methods go together. */
	concert_store_backend v1 = concert_memory_store_backend;
	v1.version = 1;
	v1.scheme = "version-one";
	assert_int_equal(concert_sys_store_register(&v1), 0);
	token_store = concert_memory_store_backend;
	token_store.scheme = "tokenstore";
	token_store.open = token_store_open;
	token_store.queue_shared = token_store_queue_shared;
	assert_int_equal(concert_sys_store_register(&token_store), CONCERT_EINVAL);
	token_store.hold_seats = counting_hold_seats;   /* plain holds counted in counting_holds */
	token_store.hold_seats_token = token_store_hold_seats_token;
	token_store.pay_token = token_store_pay_token;
	assert_int_equal(concert_sys_store_register(&token_store), 0);

	int plain_before = counting_holds;
	fixture f = { .now = T0 };
	concert_options opts = CONCERT_OPTIONS_INIT;
	opts.store = "tokenstore:";
	opts.queue = "memory:";
	opts.clock = fixture_clock;
	opts.clock_ctx = &f;
	opts.max_active = 1;
	assert_int_equal(concert_engine_open(&f.engine, &opts), 0);
	assert_int_equal(concert_concert_add(f.engine, &f.concert_id, "Tokens", T0, T0 + HOUR), 0);
	assert_int_equal(concert_schedule_add(f.engine, &f.schedule_id, f.concert_id, T0, "Hall"), 0);
	concert_seat_spec seats[] = { { 1, 100, "R" }, { 2, 100, "R" }, { 3, 100, "R" } };
	assert_int_equal(concert_seats_add(f.engine, f.schedule_id, seats, 3), 0);
	assert_int_equal(concert_wallet_charge(f.engine, NULL, "first", 1000, NULL), 0);
	char first[CONCERT_TOKEN_MAX + 1], second[CONCERT_TOKEN_MAX + 1];
	enter(&f, "first", first, CONCERT_QUEUE_ACTIVE);
	enter(&f, "second", second, CONCERT_QUEUE_WAITING);

	/* The store checks the token: one store call, the plain one unused. */
	int32_t seat = 1;
	concert_hold *hold = NULL;
	assert_int_equal(concert_hold_seats(f.engine, &hold, first, f.schedule_id, &seat, 1), 0);
	assert_int_equal(token_holds, 1);
	assert_int_equal(counting_holds - plain_before, 0);

	/* Not ACTIVE in the store's eyes: the queue's answer, here a waiting
	 * position; the plain hold never runs for a token that is not ACTIVE. */
	token_answer_not_active = 1;
	seat = 2;
	assert_int_equal(concert_hold_seats(f.engine, NULL, second, f.schedule_id, &seat, 1),
			 CONCERT_ENOT_ACTIVE);
	assert_non_null(strstr(concert_error_last()->message, "position"));
	assert_int_equal(token_holds, 2);
	assert_int_equal(counting_holds - plain_before, 0);
	/* The queue says ACTIVE after all: the ordinary path holds. */
	assert_int_equal(concert_hold_seats(f.engine, NULL, first, f.schedule_id, &seat, 1), 0);
	assert_int_equal(token_holds, 3);
	assert_int_equal(counting_holds - plain_before, 1);
	token_answer_not_active = 0;

	/* The payment ends the token in the store: the engine does not ask
	 * the queue to (this fake store leaves it ACTIVE, so it shows). */
	assert_int_equal(concert_pay(f.engine, NULL, first, hold->id, NULL), 0);
	assert_int_equal(token_pays, 1);
	concert_queue_status *st = NULL;
	assert_int_equal(concert_queue_status_get(f.engine, &st, first), 0);
	assert_int_equal(st->state, CONCERT_QUEUE_ACTIVE);
	concert_free(st);
	concert_free(hold);
	concert_engine_close(f.engine);
}

/* --- compaction of both durable journals ------------------------------ */

static void test_compact_store_and_queue(void **state)
{
	(void)state;
	char dir[64], uri[96], path[128];
	assert_int_equal(tmpdir_make(dir, sizeof(dir), "concert-engine"), 0);
	snprintf(uri, sizeof(uri), "memory:%s?fsync=off", dir);
	fixture f = { .now = T0 };
	concert_options opts = CONCERT_OPTIONS_INIT;
	opts.store = uri;
	opts.clock = fixture_clock;
	opts.clock_ctx = &f;
	static const unsigned char secret[] = "compact";
	opts.secret = secret;
	opts.secret_len = sizeof(secret) - 1;
	assert_int_equal(concert_engine_open(&f.engine, &opts), 0);
	assert_int_equal(concert_concert_add(f.engine, &f.concert_id, "Kept", T0, T0 + HOUR), 0);
	char token[CONCERT_TOKEN_MAX + 1];
	enter(&f, "kept", token, CONCERT_QUEUE_ACTIVE);
	assert_int_equal(concert_engine_compact(f.engine), 0);
	concert_engine_close(f.engine);

	snprintf(path, sizeof(path), "%s/store.1.snapshot", dir);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/queue.1.snapshot", dir);
	assert_int_equal(access(path, F_OK), 0);

	/* Reopened from the snapshots: the concert and the ACTIVE token are there. */
	assert_int_equal(concert_engine_open(&f.engine, &opts), 0);
	concert_concert *c;
	assert_int_equal(concert_concert_get(f.engine, &c, f.concert_id), 0);
	assert_string_equal(c->title, "Kept");
	concert_free(c);
	assert_int_equal(concert_queue_validate(f.engine, NULL, token, f.concert_id), 0);
	concert_engine_close(f.engine);
	assert_int_equal(tmpdir_remove(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options_and_open),
		cmocka_unit_test(test_error_text),
		cmocka_unit_test_setup_teardown(test_catalog_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wallet_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tokens_authorise, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pay_flow_and_repeat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry_by_clock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats_count_outcomes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_positions_and_leave, setup, teardown),
		cmocka_unit_test(test_log_level),
		cmocka_unit_test(test_backend_registration),
		cmocka_unit_test(test_store_checks_tokens),
		cmocka_unit_test(test_compact_store_and_queue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
