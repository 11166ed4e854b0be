/*
 * Concurrency conformance: holds expiring while the driven clock moves,
 * with owners paying, extending, releasing and cancelling and a sweeper
 * racing them; calls may carry a slightly stale `now`, as an engine thread
 * preempted between reading its clock and calling the store would.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance/threads.h"

/* ---- holds expiring while time moves, with a sweeper racing --------------- */

enum { EXPIRY_OWNERS = 16, EXPIRY_OPS = 400, EXPIRY_SEATS = 24, EXPIRY_TTL = 20,
       EXPIRY_MAX_HOLDS = EXPIRY_OWNERS * EXPIRY_OPS };

typedef struct expiry_hold {
	int64_t id;
	int owner;
	concert_time expires_at;     /* as last reported by hold/extend */
	int paid, cancelled, released;
	int64_t reservation_id;
	size_t seat_count;
	int32_t seats[2];
} expiry_hold;

typedef struct expiry_shared {
	harness *h;
	h_venue v;
	pthread_barrier_t start;
	char users[EXPIRY_OWNERS][H_NAME_SIZE];
	_Atomic int owners_left;
	_Atomic size_t hold_count;
	expiry_hold holds[EXPIRY_MAX_HOLDS];
	_Atomic uint64_t paid, expired_refusals, swept;
} expiry_shared;

typedef struct expiry_worker {
	expiry_shared *s;
	int index;                   /* -1 sweeper, else owner */
	unsigned seed;
} expiry_worker;

/*
 * Pays the hold; a success must be before its expiry. With `stale`, the
 * clock is read first and the call made after time moved on, as an engine
 * thread preempted between reading its clock and calling the store would.
 */
static void expiry_pay(expiry_shared *s, expiry_hold *eh, const char *user, int stale,
		       unsigned *seed)
{
	harness *h = s->h;
	concert_payment *p = NULL;
	concert_pay_request pay = { user, s->v.concert_id, eh->id, NULL, h_now(h) };
	if (stale) {
		h_advance(h, rand_r(seed) % (2 * EXPIRY_TTL));
		sched_yield();
	}
	int rc = h->store->pay(h->store_ctx, &p, &pay);
	if (rc == 0) {
		/* Invariant 2: an expired hold can never be paid. */
		CHECK(pay.now < eh->expires_at, "hold %lld paid at %lld, expired at %lld",
		      (long long)eh->id, (long long)pay.now, (long long)eh->expires_at);
		eh->paid = 1;
		eh->reservation_id = p->reservation_id;
		atomic_fetch_add(&s->paid, 1);
		concert_free(p);
	} else {
		/* A refusal only once the hold may have expired: the sweeper reads a
		 * later clock than ours and may already have dropped it. */
		CHECK(rc == CONCERT_EEXPIRED || rc == CONCERT_ENOTFOUND, "pay: %d %s", rc,
		      concert_error_name(rc));
		atomic_fetch_add(&s->expired_refusals, 1);
	}
}

static void expiry_owner(expiry_worker *w)
{
	expiry_shared *s = w->s;
	harness *h = s->h;
	const char *user = s->users[w->index];
	for (int i = 0; i < EXPIRY_OPS; i++) {
		/* Time moves with the work: every owner pushes the shared clock. */
		h_advance(h, rand_r(&w->seed) % 4);
		int32_t seats[2];
		size_t n = random_seats(&w->seed, seats, 2, EXPIRY_SEATS);
		concert_time now = h_now(h);
		concert_hold *hold = NULL;
		int rc = h_hold_ex(h, &hold, user, s->v.concert_id, s->v.schedule_id, seats, n,
				   now + EXPIRY_TTL, 1000, 1000);
		if (rc == CONCERT_ESEAT_UNAVAILABLE)
			continue;
		CHECK(rc == 0, "hold: %d %s", rc, concert_error_name(rc));
		if (rc)
			continue;
		size_t slot = atomic_fetch_add(&s->hold_count, 1);
		expiry_hold *eh = &s->holds[slot];
		eh->id = hold->id;
		eh->owner = w->index;
		eh->expires_at = hold->expires_at;
		eh->seat_count = n;
		memcpy(eh->seats, seats, n * sizeof(*seats));
		concert_free(hold);

		h_advance(h, rand_r(&w->seed) % 4);
		switch (rand_r(&w->seed) % 4) {
		case 0:
			expiry_pay(s, eh, user, rand_r(&w->seed) % 2, &w->seed);
			break;
		case 1: {
			concert_hold_change req = { user, eh->id, NULL, 0, h_now(h), EXPIRY_TTL,
				3 * EXPIRY_TTL, 2 };
			rc = h->store->hold_extend(h->store_ctx, &hold, &req);
			if (rc == 0) {
				CHECK(req.now < eh->expires_at, "extended an expired hold");
				eh->expires_at = hold->expires_at;
				concert_free(hold);
			} else {
				CHECK(rc == CONCERT_EEXPIRED || rc == CONCERT_ELIMIT ||
				      rc == CONCERT_ENOTFOUND, "extend: %d %s", rc, concert_error_name(rc));
			}
			h_advance(h, rand_r(&w->seed) % 4);
			expiry_pay(s, eh, user, 0, &w->seed);
			break;
		}
		case 2:
			/* Let it lapse: from now on it must not be payable. */
			h_advance(h, EXPIRY_TTL);
			expiry_pay(s, eh, user, 0, &w->seed);
			break;
		default: {
			concert_hold_change req = { user, eh->id, NULL, 0, h_now(h), 0, 0, 0 };
			rc = h->store->hold_release(h->store_ctx, &req);
			CHECK(rc == 0 || rc == CONCERT_EEXPIRED || rc == CONCERT_ENOTFOUND,
			      "release: %d %s", rc, concert_error_name(rc));
			if (rc == 0)
				eh->released = 1;
			break;
		}
		}
		/* Give reserved seats back, so seats keep cycling; keep the last few. */
		if (eh->paid && i < EXPIRY_OPS - 4) {
			rc = h_cancel(h, NULL, NULL, user, eh->reservation_id);
			CHECK(rc == 0, "cancel: %d %s", rc, concert_error_name(rc));
			if (rc == 0)
				eh->cancelled = 1;
		}
	}
}

static void *expiry_run(void *arg)
{
	expiry_worker *w = arg;
	expiry_shared *s = w->s;
	pthread_barrier_wait(&s->start);
	if (w->index < 0) {
		while (atomic_load(&s->owners_left) > 0) {
			uint64_t swept = 0;
			int rc = s->h->store->sweep(s->h->store_ctx, h_now(s->h), &swept);
			CHECK(rc == 0, "sweep: %d %s", rc, concert_error_name(rc));
			atomic_fetch_add(&s->swept, swept);
			sched_yield();
		}
	} else {
		expiry_owner(w);
		atomic_fetch_sub(&s->owners_left, 1);
	}
	return NULL;
}

/* Checks seats, reservations and wallets against what the owners saw. */
static void verify_expiry(harness *h, expiry_shared *s)
{
	/* Every seat: RESERVED by exactly the one paid hold that has it, HELD
	 * only under a hold still live now, else AVAILABLE. */
	concert_time now = h_now(h);
	int reserved_by[EXPIRY_SEATS + 1] = { 0 }, live_on[EXPIRY_SEATS + 1] = { 0 };
	size_t count = atomic_load(&s->hold_count);
	for (size_t i = 0; i < count; i++) {
		const expiry_hold *eh = &s->holds[i];
		for (size_t k = 0; k < eh->seat_count; k++) {
			if (eh->paid && !eh->cancelled)
				reserved_by[eh->seats[k]]++;
			else if (!eh->paid && !eh->released && eh->expires_at > now)
				live_on[eh->seats[k]]++;
		}
		if (eh->paid) {
			concert_reservation *r = NULL;
			assert_ok(h->store->reservation_get(h->store_ctx, &r, eh->reservation_id));
			assert_int_equal(r->state, eh->cancelled ? CONCERT_RESERVATION_CANCELLED
							      : CONCERT_RESERVATION_CONFIRMED);
			assert_int_equal(r->seat_count, eh->seat_count);
			concert_free(r);
		}
	}
	for (int32_t seat = 1; seat <= EXPIRY_SEATS; seat++) {
		if (reserved_by[seat] > 1)
			fail_msg("seat %d is in %d confirmed reservations (invariant 1)", (int)seat,
				 reserved_by[seat]);
		int32_t got = h_seat_state(h, s->v.schedule_id, seat);
		int32_t want = reserved_by[seat] ? CONCERT_SEAT_RESERVED
				: live_on[seat] ? CONCERT_SEAT_HELD : CONCERT_SEAT_AVAILABLE;
		if (got != want)
			fail_msg("seat %d is %s, expected %s (reserved by %d, live holds %d)", (int)seat,
				 concert_seat_state_name(got), concert_seat_state_name(want),
				 reserved_by[seat], live_on[seat]);
		assert_true(live_on[seat] <= 1 && !(live_on[seat] && reserved_by[seat]));
	}
	for (int i = 0; i < EXPIRY_OWNERS; i++)
		h_check_wallet(h, s->users[i]);
	for (int i = 0; i < EXPIRY_OWNERS; i++)
		h_check_wallet(h, s->users[i]);
	h_check_audit(h);
}

static void test_expiry_race(void **state)
{
	harness *h = *state;
	reset_failures();
	static expiry_shared shared;
	expiry_shared *s = &shared;
	memset(s, 0, sizeof(*s));
	s->h = h;
	h_make_venue(h, &s->v, EXPIRY_SEATS);
	int with_sweeper = h->store->sweep != NULL;
	size_t threads = EXPIRY_OWNERS + (size_t)with_sweeper;
	pthread_barrier_init(&s->start, NULL, (unsigned)threads);
	atomic_store(&s->owners_left, EXPIRY_OWNERS);
	expiry_worker w[EXPIRY_OWNERS + 1];
	for (int i = 0; i < EXPIRY_OWNERS; i++) {
		h_unique(s->users[i], "expiry");
		assert_ok(h_charge(h, NULL, s->users[i], 1000000000, NULL));
		w[i] = (expiry_worker){ s, i, 500 + (unsigned)i };
	}
	w[EXPIRY_OWNERS] = (expiry_worker){ s, -1, 0 };
	run_threads(threads, expiry_run, w, sizeof(w[0]));
	assert_no_thread_failures();
	assert_true(atomic_load(&s->paid) > 0);

	verify_expiry(h, s);
	/* A durable store replays the interleaved journal to the same state. */
	if (h_reopen(h))
		verify_expiry(h, s);
	print_message("expiry race: %zu holds, %llu paid, %llu refused as expired, %llu swept\n",
		      atomic_load(&s->hold_count), (unsigned long long)atomic_load(&s->paid),
		      (unsigned long long)atomic_load(&s->expired_refusals),
		      (unsigned long long)atomic_load(&s->swept));
	pthread_barrier_destroy(&s->start);
	h_check_audit(h);
}

int main(void)
{
	h_apply_filters();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_expiry_race, h_setup_store, h_teardown),
	};
	return cmocka_run_group_tests_name("conformance.concurrency_expiry", tests, NULL, NULL);
}
