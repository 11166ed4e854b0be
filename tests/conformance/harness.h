/*
 * Backend conformance harness: opens the store and queue backends named by
 * CONCERT_TEST_STORE / CONCERT_TEST_QUEUE through their vtables, drives
 * their clock, and builds fixtures that only ever touch data this run
 * created (unique titles, user ids and idempotency keys), so the suite can
 * run against a shared database that is not empty.
 *
 * URIs: "memory:" (the default) is ephemeral; "memory:TMP" or
 * "memory:TMP?fsync=..." gets a fresh mkdtemp directory per test (the same
 * one for store and queue, as the engine does) which teardown removes.
 */
#ifndef CONCERT_TEST_CONFORMANCE_HARNESS_H
#define CONCERT_TEST_CONFORMANCE_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/internal.h"

/* A fixed, realistic epoch for the driven clock (2027-01-15). */
#define H_EPOCH ((concert_time)1800000000000LL)
#define H_SECOND ((concert_time)1000)
#define H_MINUTE (60 * H_SECOND)
#define H_HOUR (60 * H_MINUTE)
#define H_DAY (24 * H_HOUR)

#define H_URI_MAX 1024

typedef struct harness {
	const concert_store_backend *store;
	void *store_ctx;
	const concert_queue_backend *queue;
	void *queue_ctx;
	concert_backend_env env;
	_Atomic int64_t clock;
	char store_uri[H_URI_MAX];
	char queue_uri[H_URI_MAX];
	char tmpdir[256];         /* "" when no temporary directory was made */
	int durable;              /* the store keeps its state across reopen */
} harness;

/*
 * Applies CONCERT_TEST_FILTER / CONCERT_TEST_SKIP (cmocka name patterns,
 * '*' and '?') from the environment; call first in main.
 */
void h_apply_filters(void);

/* cmocka setup/teardown: *state becomes a harness with the slots opened. */
int h_setup_store(void **state);
int h_setup_queue(void **state);
int h_setup_both(void **state);
int h_teardown(void **state);

/*
 * Closes and reopens the backends on the same data. For a durable store
 * this proves what was acknowledged survived; for an ephemeral one it does
 * nothing (there is nothing to reopen onto). Returns 1 if it reopened.
 */
int h_reopen(harness *h);

/* The driven clock. */
concert_time h_now(const harness *h);
void h_set_time(harness *h, concert_time t);
concert_time h_advance(harness *h, concert_time ms);

/*
 * Unique names for this run: "<run prefix>-<tag><n>", at most 64 bytes.
 * `buf` must hold CONCERT_USER_ID_MAX + 1 bytes. Thread-safe.
 */
const char *h_unique(char *buf, const char *tag);
#define H_NAME_SIZE (CONCERT_USER_ID_MAX + 1)

/*
 * A positive id no other run uses, for queue tests that need a concert id
 * without a store (the queue backend does not check concerts). Thread-safe.
 */
int64_t h_unique_id(void);

/* ---- fixtures ---------------------------------------------------------- */

/* Seat i (1-based seat_no = first_seat + i) of a fixture schedule. */
int64_t h_price_of(int32_t seat_no);
const char *h_grade_of(int32_t seat_no);

typedef struct h_venue {
	int64_t concert_id;
	int64_t schedule_id;
	concert_time opens_at;
	concert_time closes_at;
	int32_t seats;            /* seats 1..seats exist */
} h_venue;

/*
 * A concert whose window is [now - 1 day, now + 30 days), one schedule and
 * `seats` seats numbered 1..seats with h_price_of/h_grade_of.
 */
void h_make_venue(harness *h, h_venue *v, int32_t seats);
/* The same with an explicit window. */
void h_make_venue_window(harness *h, h_venue *v, int32_t seats, concert_time opens_at,
	concert_time closes_at);
int64_t h_add_schedule(harness *h, int64_t concert_id, int32_t seats);

/* Sum of h_price_of over the seats. */
int64_t h_amount_of(const int32_t *seat_nos, size_t count);

/* ---- calls with the suite's default policy ------------------------------ */

#define H_HOLD_TTL (5 * H_MINUTE)

/* hold_seats with generous per-user limits; expires at now + H_HOLD_TTL. */
int h_hold(harness *h, concert_hold **out, const char *user, const h_venue *v,
	const int32_t *seat_nos, size_t count);
/* The same with explicit expiry and limits. */
int h_hold_ex(harness *h, concert_hold **out, const char *user, int64_t concert_id,
	int64_t schedule_id, const int32_t *seat_nos, size_t count, concert_time expires_at,
	uint32_t max_holds, uint32_t max_seats);
int h_release(harness *h, const char *user, int64_t hold_id, const int32_t *seat_nos,
	size_t count);
int h_extend(harness *h, concert_hold **out, const char *user, int64_t hold_id, concert_time ttl,
	concert_time max_lifetime, uint32_t max_extensions);
int h_pay(harness *h, concert_payment **out, const char *user, int64_t concert_id,
	int64_t hold_id, const char *idem_key);
int h_charge(harness *h, int64_t *out_balance, const char *user, int64_t amount,
	const char *idem_key);
int h_cancel(harness *h, int64_t *out_refunded, int64_t *out_balance, const char *user,
	int64_t reservation_id);

/* ---- reads -------------------------------------------------------------- */

/* One seat of a schedule (fails the test if absent). */
concert_seat h_seat(harness *h, int64_t schedule_id, int32_t seat_no);
int32_t h_seat_state(harness *h, int64_t schedule_id, int32_t seat_no);
/* Counts of a schedule (fails the test on error). */
concert_schedule h_schedule(harness *h, int64_t schedule_id);
int64_t h_balance(harness *h, const char *user);
/* Number of the user's wallet transactions. */
size_t h_tx_count(harness *h, const char *user);
concert_hold h_hold_read(harness *h, int64_t hold_id);

/*
 * Checks the user's wallet: balance >= 0, equal to the sum of the history,
 * each tx's balance_after consistent with the next older one. Returns the
 * balance.
 */
int64_t h_check_wallet(harness *h, const char *user);

/* Audit: no mismatches and balance + payments - refunds == charges. */
void h_check_audit(harness *h);

/* ---- assertions ----------------------------------------------------------- */

/* An id no backend has handed out (for ENOTFOUND checks). */
int64_t h_unknown_id(void);

/* States and versions of a whole schedule, to prove a failure changed nothing. */
typedef struct h_seat_map {
	size_t count;
	concert_seat items[128];
} h_seat_map;
void h_map_read(harness *h, int64_t schedule_id, h_seat_map *m);
void h_map_unchanged(harness *h, int64_t schedule_id, const h_seat_map *before);

/* Each of the seats is in `state`. */
void h_assert_states(harness *h, int64_t schedule_id, const int32_t *seats, size_t n,
	int32_t state);
/* The schedule's counts (and total == their sum). */
void h_assert_counts(harness *h, int64_t schedule_id, int64_t available, int64_t held,
	int64_t reserved);
/* The hold lists exactly these seats. */
void h_assert_hold_seats(const concert_hold *hold, const int32_t *seats, size_t n);

/* Fails with the library's last error when `expr` does not return `code`. */
#define assert_rc(expr, code)                                                         \
	do {                                                                          \
		concert_error_clear();                                                \
		int h_rc_ = (expr);                                                   \
		int h_want_ = (code);                                                 \
		if (h_rc_ != h_want_)                                                 \
			fail_msg("%s\n  returned %d %s (%s), expected %d %s", #expr, h_rc_, \
				 concert_error_name(h_rc_), concert_error_last()->message, \
				 h_want_, concert_error_name(h_want_));               \
	} while (0)

#define assert_ok(expr) assert_rc(expr, 0)

/* Asserts the last error's conflicts are exactly `want` (ascending). */
void h_assert_conflicts(const int32_t *want, size_t count);

#endif
