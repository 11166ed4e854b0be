/*
 * Concurrency conformance of the store: many threads racing on one backend
 * instance over holds, per-user limits, payments, cancellations, charges and
 * idempotency keys. Threads only record what they saw; the main thread
 * checks the records and the store's own state after join. No sleeps:
 * threads start together on a barrier and run flat out.
 * Expiry races are in test_concurrency_expiry.c, the queue's in
 * test_concurrency_queue.c.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance/threads.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- holds racing on overlapping seats ------------------------------------ */

enum { HOLD_THREADS = 32, HOLD_ATTEMPTS = 8, HOLD_SEATS = 48, HOLD_MAX_SET = 4, HOLD_ROUNDS = 10 };

typedef struct hold_attempt {
	int rc;
	int64_t hold_id;
	size_t seat_count;
	int32_t seats[HOLD_MAX_SET];
	size_t conflict_count;
	int32_t conflicts[HOLD_MAX_SET + 1];
} hold_attempt;

typedef struct hold_worker {
	harness *h;
	const h_venue *v;
	pthread_barrier_t *start;
	unsigned seed;
	int hot;                 /* all threads want seat 1 only */
	char user[H_NAME_SIZE];
	hold_attempt attempts[HOLD_ATTEMPTS];
} hold_worker;

static void *hold_worker_run(void *arg)
{
	hold_worker *w = arg;
	pthread_barrier_wait(w->start);
	size_t rounds = w->hot ? 1 : HOLD_ATTEMPTS;
	for (size_t i = 0; i < rounds; i++) {
		hold_attempt *a = &w->attempts[i];
		if (w->hot) {
			a->seats[0] = 1;
			a->seat_count = 1;
		} else {
			a->seat_count = random_seats(&w->seed, a->seats, HOLD_MAX_SET, HOLD_SEATS);
		}
		concert_hold *hold = NULL;
		a->rc = h_hold(w->h, &hold, w->user, w->v, a->seats, a->seat_count);
		if (a->rc == 0) {
			a->hold_id = hold->id;
			CHECK(hold->seat_count == a->seat_count, "hold has %zu seats, asked %zu",
			      hold->seat_count, a->seat_count);
			concert_free(hold);
		} else if (a->rc == CONCERT_ESEAT_UNAVAILABLE) {
			const concert_error *e = concert_error_last();
			a->conflict_count = e->conflict_count;
			for (size_t k = 0; k < e->conflict_count && k < N(a->conflicts); k++)
				a->conflicts[k] = e->conflicts[k];
		}
	}
	return NULL;
}

static void check_hold_race(harness *h, const h_venue *v, hold_worker *w, size_t rounds,
			    size_t *out_wins, size_t *out_losses)
{
	int64_t owner[HOLD_SEATS + 1] = { 0 };
	size_t wins = 0, losses = 0;
	for (size_t t = 0; t < HOLD_THREADS; t++)
		for (size_t i = 0; i < rounds; i++) {
			const hold_attempt *a = &w[t].attempts[i];
			if (a->rc != 0)
				continue;
			wins++;
			for (size_t k = 0; k < a->seat_count; k++) {
				if (owner[a->seats[k]])
					fail_msg("seat %d won by holds %lld and %lld", (int)a->seats[k],
						 (long long)owner[a->seats[k]], (long long)a->hold_id);
				owner[a->seats[k]] = a->hold_id;
			}
			concert_hold *hold = NULL;
			assert_ok(h->store->hold_get(h->store_ctx, &hold, a->hold_id, h_now(h)));
			assert_string_equal(hold->user_id, w[t].user);
			assert_int_equal(hold->state, CONCERT_HOLD_HELD);
			assert_int_equal(hold->seat_count, a->seat_count);
			assert_int_equal(hold->amount, h_amount_of(a->seats, a->seat_count));
			concert_free(hold);
		}
	for (size_t t = 0; t < HOLD_THREADS; t++)
		for (size_t i = 0; i < rounds; i++) {
			const hold_attempt *a = &w[t].attempts[i];
			if (a->rc == 0)
				continue;
			if (a->rc != CONCERT_ESEAT_UNAVAILABLE)
				fail_msg("hold failed with %d (%s)", a->rc, concert_error_name(a->rc));
			losses++;
			/* Conflicts: non-empty, ascending, requested, and really held. */
			assert_true(a->conflict_count >= 1);
			assert_true(a->conflict_count <= a->seat_count);
			for (size_t k = 0; k < a->conflict_count; k++) {
				int32_t s = a->conflicts[k];
				int requested = 0;
				for (size_t j = 0; j < a->seat_count; j++)
					requested |= a->seats[j] == s;
				if (!requested || !owner[s])
					fail_msg("conflict seat %d: requested %d, held by %lld", (int)s,
						 requested, (long long)owner[s]);
				if (k)
					assert_true(s > a->conflicts[k - 1]);
			}
		}
	/* The store agrees: exactly the won seats are HELD. */
	concert_seat_list *list = NULL;
	assert_ok(h->store->seats_list(h->store_ctx, &list, v->schedule_id, h_now(h)));
	size_t held = 0;
	for (size_t i = 0; i < list->count; i++) {
		int32_t s = list->items[i].seat_no;
		int32_t want = owner[s] ? CONCERT_SEAT_HELD : CONCERT_SEAT_AVAILABLE;
		if (list->items[i].state != want)
			fail_msg("seat %d is %s, expected %s", (int)s,
				 concert_seat_state_name(list->items[i].state),
				 concert_seat_state_name(want));
		held += owner[s] != 0;
	}
	concert_free(list);
	assert_int_equal(h_schedule(h, v->schedule_id).held_seats, held);
	*out_wins = wins;
	*out_losses = losses;
}

static void test_hold_race(void **state)
{
	harness *h = *state;
	reset_failures();
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, HOLD_THREADS);
	static hold_worker w[HOLD_THREADS];
	size_t wins, losses;
	for (unsigned round = 0; round < HOLD_ROUNDS; round++) {
		h_venue v;
		h_make_venue(h, &v, HOLD_SEATS);
		memset(w, 0, HOLD_THREADS * sizeof(*w));
		for (size_t t = 0; t < HOLD_THREADS; t++) {
			w[t].h = h;
			w[t].v = &v;
			w[t].start = &start;
			w[t].seed = 1000 * round + (unsigned)t;
			h_unique(w[t].user, "racer");
		}
		run_threads(HOLD_THREADS, hold_worker_run, w, sizeof(*w));
		assert_no_thread_failures();
		check_hold_race(h, &v, w, HOLD_ATTEMPTS, &wins, &losses);
		/* More seats were asked for than exist, so some attempts lost. */
		assert_true(wins >= 1);
		assert_true(losses >= 1);
		/* A durable store replays the interleaved journal to the same state. */
		if (round == HOLD_ROUNDS - 1 && h_reopen(h)) {
			size_t again_wins, again_losses;
			check_hold_race(h, &v, w, HOLD_ATTEMPTS, &again_wins, &again_losses);
			assert_int_equal(again_wins, wins);
		}
	}

	/* One hot seat: exactly one winner, every loser told it is seat 1. */
	h_venue hot;
	h_make_venue(h, &hot, HOLD_SEATS);
	memset(w, 0, HOLD_THREADS * sizeof(*w));
	for (size_t t = 0; t < HOLD_THREADS; t++) {
		w[t].h = h;
		w[t].v = &hot;
		w[t].start = &start;
		w[t].hot = 1;
		h_unique(w[t].user, "hot");
	}
	run_threads(HOLD_THREADS, hold_worker_run, w, sizeof(*w));
	assert_no_thread_failures();
	check_hold_race(h, &hot, w, 1, &wins, &losses);
	assert_int_equal(wins, 1);
	assert_int_equal(losses, HOLD_THREADS - 1);
	for (size_t t = 0; t < HOLD_THREADS; t++)
		if (w[t].attempts[0].rc)
			assert_int_equal(w[t].attempts[0].conflict_count, 1);
	pthread_barrier_destroy(&start);
	h_check_audit(h);
}

/* ---- one user's threads racing against the per-user limits ---------------- */

enum { LIMIT_THREADS = 32 };

typedef struct limit_worker {
	harness *h;
	const h_venue *v;
	pthread_barrier_t *start;
	const char *user;
	int32_t seats[2];
	size_t seat_count;
	uint32_t max_holds, max_seats;
	int rc;
} limit_worker;

static void *limit_run(void *arg)
{
	limit_worker *w = arg;
	pthread_barrier_wait(w->start);
	w->rc = h_hold_ex(w->h, NULL, w->user, w->v->concert_id, w->v->schedule_id, w->seats,
			  w->seat_count, h_now(w->h) + H_HOUR, w->max_holds, w->max_seats);
	return NULL;
}

/* Every thread holds its own seats for one user; returns the winners. */
static int limit_race(harness *h, size_t seats_each, uint32_t max_holds, uint32_t max_seats)
{
	h_venue v;
	char user[H_NAME_SIZE];
	h_unique(user, "greedy");
	h_make_venue(h, &v, (int32_t)(LIMIT_THREADS * seats_each));
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, LIMIT_THREADS);
	limit_worker w[LIMIT_THREADS];
	for (size_t t = 0; t < LIMIT_THREADS; t++) {
		w[t] = (limit_worker){ h, &v, &start, user, { 0, 0 }, seats_each, max_holds,
			max_seats, 1 };
		for (size_t k = 0; k < seats_each; k++)
			w[t].seats[k] = (int32_t)(t * seats_each + k + 1);
	}
	run_threads(LIMIT_THREADS, limit_run, w, sizeof(w[0]));
	pthread_barrier_destroy(&start);
	int wins = 0;
	for (size_t t = 0; t < LIMIT_THREADS; t++) {
		if (w[t].rc != 0 && w[t].rc != CONCERT_ELIMIT)
			fail_msg("hold: %d %s", w[t].rc, concert_error_name(w[t].rc));
		wins += w[t].rc == 0;
	}
	assert_int_equal(h_schedule(h, v.schedule_id).held_seats, wins * (int)seats_each);
	return wins;
}

static void test_limit_race(void **state)
{
	harness *h = *state;
	/* The check and the insert are one step: never a fifth live hold ... */
	assert_int_equal(limit_race(h, 1, 4, 1000), 4);
	/* ... nor a sixth seat (2 + 2 fit in 5, a third pair does not). */
	assert_int_equal(limit_race(h, 2, 1000, 5), 2);
	h_check_audit(h);
}

/* ---- payments, cancellations and charges racing -------------------------- */

enum { MONEY_THREADS = 32, MONEY_USERS = 16, MONEY_OPS = 200, MONEY_SEATS = 64,
       MONEY_RESERVATIONS = MONEY_THREADS * MONEY_OPS };

typedef struct reservation_rec {
	int64_t id;
	int user;
	int64_t amount;
	size_t seat_count;
	int32_t seats[2];
	_Atomic int cancels;      /* successful cancels: must end 0 or 1 */
} reservation_rec;

typedef struct money_shared {
	harness *h;
	h_venue v;
	pthread_barrier_t start;
	char users[MONEY_USERS][H_NAME_SIZE];
	_Atomic int64_t charged[MONEY_USERS];
	_Atomic int64_t paid[MONEY_USERS];
	_Atomic int64_t refunded[MONEY_USERS];
	pthread_mutex_t lock;
	size_t reservation_count;
	reservation_rec reservations[MONEY_RESERVATIONS];
} money_shared;

typedef struct money_worker {
	money_shared *s;
	unsigned seed;
} money_worker;

static void money_pay(money_shared *s, unsigned *seed)
{
	harness *h = s->h;
	int u = rand_r(seed) % MONEY_USERS;
	int32_t seats[2];
	size_t n = random_seats(seed, seats, 2, MONEY_SEATS);
	concert_hold *hold = NULL;
	int rc = h_hold(h, &hold, s->users[u], &s->v, seats, n);
	if (rc == CONCERT_ESEAT_UNAVAILABLE)
		return;
	CHECK(rc == 0, "hold: %d %s", rc, concert_error_name(rc));
	if (rc)
		return;
	concert_payment *p = NULL;
	rc = h_pay(h, &p, s->users[u], s->v.concert_id, hold->id, NULL);
	if (rc == 0) {
		CHECK(p->amount == hold->amount, "paid %lld for a hold of %lld", (long long)p->amount,
		      (long long)hold->amount);
		CHECK(p->balance >= 0, "negative balance %lld after payment", (long long)p->balance);
		atomic_fetch_add(&s->paid[u], p->amount);
		pthread_mutex_lock(&s->lock);
		reservation_rec *r = &s->reservations[s->reservation_count];
		r->id = p->reservation_id;
		r->user = u;
		r->amount = p->amount;
		r->seat_count = n;
		memcpy(r->seats, seats, n * sizeof(*seats));
		s->reservation_count++;
		pthread_mutex_unlock(&s->lock);
	} else {
		CHECK(rc == CONCERT_EFUNDS, "pay: %d %s", rc, concert_error_name(rc));
		rc = h_release(h, s->users[u], hold->id, NULL, 0);
		CHECK(rc == 0, "release after EFUNDS: %d %s", rc, concert_error_name(rc));
	}
	concert_free(p);
	concert_free(hold);
}

static void money_cancel(money_shared *s, unsigned *seed)
{
	pthread_mutex_lock(&s->lock);
	size_t count = s->reservation_count;
	pthread_mutex_unlock(&s->lock);
	if (!count)
		return;
	reservation_rec *r = &s->reservations[(size_t)rand_r(seed) % count];
	int64_t refunded = 0, balance = -1;
	int rc = h_cancel(s->h, &refunded, &balance, s->users[r->user], r->id);
	if (rc == 0) {
		atomic_fetch_add(&r->cancels, 1);
		atomic_fetch_add(&s->refunded[r->user], refunded);
		CHECK(refunded == r->amount, "refunded %lld of %lld", (long long)refunded,
		      (long long)r->amount);
		CHECK(balance >= refunded, "balance %lld after a refund of %lld", (long long)balance,
		      (long long)refunded);
	} else {
		CHECK(rc == CONCERT_ESTATE, "cancel: %d %s", rc, concert_error_name(rc));
	}
}

static void *money_worker_run(void *arg)
{
	money_worker *w = arg;
	money_shared *s = w->s;
	pthread_barrier_wait(&s->start);
	for (int i = 0; i < MONEY_OPS; i++) {
		int op = rand_r(&w->seed) % 10;
		if (op < 3) {
			int u = rand_r(&w->seed) % MONEY_USERS;
			int64_t amount = 1 + rand_r(&w->seed) % 200000, balance = -1;
			int rc = h_charge(s->h, &balance, s->users[u], amount, NULL);
			CHECK(rc == 0, "charge: %d %s", rc, concert_error_name(rc));
			CHECK(balance >= amount, "balance %lld after charging %lld", (long long)balance,
			      (long long)amount);
			if (rc == 0)
				atomic_fetch_add(&s->charged[u], amount);
		} else if (op < 8) {
			money_pay(s, &w->seed);
		} else {
			money_cancel(s, &w->seed);
		}
	}
	return NULL;
}

/* Checks the store against what the threads were told; returns the number
 * of confirmed reservations. */
static size_t verify_money(harness *h, money_shared *s)
{
	/* Money: each wallet is exactly what was acknowledged, never negative. */
	for (int u = 0; u < MONEY_USERS; u++) {
		int64_t want = s->charged[u] - s->paid[u] + s->refunded[u];
		assert_int_equal(h_check_wallet(h, s->users[u]), want);
	}
	/* Seats: RESERVED exactly when one confirmed reservation has it. */
	int confirmed_of[MONEY_SEATS + 1] = { 0 };
	size_t confirmed = 0;
	for (size_t i = 0; i < s->reservation_count; i++) {
		reservation_rec *r = &s->reservations[i];
		int cancels = atomic_load(&r->cancels);
		assert_true(cancels <= 1);
		concert_reservation *got = NULL;
		assert_ok(h->store->reservation_get(h->store_ctx, &got, r->id));
		assert_int_equal(got->state, cancels ? CONCERT_RESERVATION_CANCELLED
						     : CONCERT_RESERVATION_CONFIRMED);
		assert_int_equal(got->amount, r->amount);
		assert_string_equal(got->user_id, s->users[r->user]);
		concert_free(got);
		if (!cancels) {
			confirmed++;
			for (size_t k = 0; k < r->seat_count; k++)
				confirmed_of[r->seats[k]]++;
		}
	}
	concert_seat_list *list = NULL;
	assert_ok(h->store->seats_list(h->store_ctx, &list, s->v.schedule_id, h_now(h)));
	for (size_t i = 0; i < list->count; i++) {
		int32_t seat = list->items[i].seat_no;
		assert_true(confirmed_of[seat] <= 1);
		int32_t want = confirmed_of[seat] ? CONCERT_SEAT_RESERVED : CONCERT_SEAT_AVAILABLE;
		if (list->items[i].state != want)
			fail_msg("seat %d is %s with %d confirmed reservations", (int)seat,
				 concert_seat_state_name(list->items[i].state), confirmed_of[seat]);
	}
	concert_free(list);
	assert_true(s->reservation_count > 0);
	h_check_audit(h);
	return confirmed;
}

static void test_money_race(void **state)
{
	harness *h = *state;
	reset_failures();
	static money_shared shared;
	money_shared *s = &shared;
	memset(s, 0, sizeof(*s));
	s->h = h;
	h_make_venue(h, &s->v, MONEY_SEATS);
	pthread_barrier_init(&s->start, NULL, MONEY_THREADS);
	pthread_mutex_init(&s->lock, NULL);
	for (int u = 0; u < MONEY_USERS; u++)
		h_unique(s->users[u], "payer");
	money_worker w[MONEY_THREADS];
	for (size_t t = 0; t < MONEY_THREADS; t++) {
		w[t].s = s;
		w[t].seed = 7000 + (unsigned)t;
	}
	run_threads(MONEY_THREADS, money_worker_run, w, sizeof(w[0]));
	assert_no_thread_failures();

	size_t confirmed = verify_money(h, s);
	/* A durable store replays the interleaved journal to the same state. */
	if (h_reopen(h))
		assert_int_equal(verify_money(h, s), confirmed);
	print_message("money race: %zu reservations, %zu confirmed\n", s->reservation_count,
		      confirmed);
	pthread_barrier_destroy(&s->start);
	pthread_mutex_destroy(&s->lock);
	h_check_audit(h);
}

/* ---- double spending: the same money, hold or reservation twice at once --- */

enum { PAIRS = 16 };

typedef struct spend_pair {
	harness *h;
	const h_venue *v;
	pthread_barrier_t *start;
	char user[H_NAME_SIZE];
	int64_t hold_ids[2];      /* side i pays hold_ids[i] */
	int64_t same_hold;        /* both sides pay this one */
	int rc_two[2], rc_same[2], rc_cancel[2], rc_topup;
	_Atomic int64_t winner_reservation;
} spend_pair;

typedef struct spend_side {
	spend_pair *pair;
	int side;
} spend_side;

static void *spend_run(void *arg)
{
	spend_side *sd = arg;
	spend_pair *p = sd->pair;
	harness *h = p->h;
	/* Two holds, money for one. */
	pthread_barrier_wait(p->start);
	p->rc_two[sd->side] = h_pay(h, NULL, p->user, p->v->concert_id, p->hold_ids[sd->side], NULL);
	/* One hold paid twice, with money for both (only the state can refuse). */
	pthread_barrier_wait(p->start);
	if (sd->side == 0)
		p->rc_topup = h_charge(h, NULL, p->user, 300000, NULL);
	pthread_barrier_wait(p->start);
	concert_payment *pay = NULL;
	p->rc_same[sd->side] = h_pay(h, &pay, p->user, p->v->concert_id, p->same_hold, NULL);
	if (pay)
		atomic_store(&p->winner_reservation, pay->reservation_id);
	concert_free(pay);
	/* One reservation cancelled twice. */
	pthread_barrier_wait(p->start);
	int64_t id = atomic_load(&p->winner_reservation);
	p->rc_cancel[sd->side] = id ? h_cancel(h, NULL, NULL, p->user, id) : CONCERT_EINTERNAL;
	return NULL;
}

static void test_double_spend(void **state)
{
	harness *h = *state;
	h_venue v;
	h_make_venue(h, &v, 3 * PAIRS);
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, 2 * PAIRS);
	static spend_pair pairs[PAIRS];
	spend_side sides[2 * PAIRS];
	memset(pairs, 0, sizeof(pairs));
	for (int i = 0; i < PAIRS; i++) {
		spend_pair *p = &pairs[i];
		p->h = h;
		p->v = &v;
		p->start = &start;
		h_unique(p->user, "spender");
		/* Seats 3i+1 and 3i+2 cost 99000 and 77000 (see h_price_of). */
		int32_t a[] = { 3 * i + 1 }, b[] = { 3 * i + 2 }, c[] = { 3 * i + 3 };
		concert_hold *hold = NULL;
		assert_ok(h_hold(h, &hold, p->user, &v, a, 1));
		p->hold_ids[0] = hold->id;
		concert_free(hold);
		assert_ok(h_hold(h, &hold, p->user, &v, b, 1));
		p->hold_ids[1] = hold->id;
		concert_free(hold);
		assert_ok(h_hold(h, &hold, p->user, &v, c, 1));
		p->same_hold = hold->id;
		concert_free(hold);
		/* Enough for either of a/b, not both. */
		assert_ok(h_charge(h, NULL, p->user, 99000, NULL));
		sides[2 * i] = (spend_side){ p, 0 };
		sides[2 * i + 1] = (spend_side){ p, 1 };
	}
	run_threads(2 * PAIRS, spend_run, sides, sizeof(sides[0]));
	for (int i = 0; i < PAIRS; i++) {
		spend_pair *p = &pairs[i];
		int ok_two = (p->rc_two[0] == 0) + (p->rc_two[1] == 0);
		if (ok_two != 1 || (p->rc_two[0] && p->rc_two[0] != CONCERT_EFUNDS) ||
		    (p->rc_two[1] && p->rc_two[1] != CONCERT_EFUNDS))
			fail_msg("pair %d: paying two holds with money for one gave %d and %d", i,
				 p->rc_two[0], p->rc_two[1]);
		int ok_same = (p->rc_same[0] == 0) + (p->rc_same[1] == 0);
		int failed_same = p->rc_same[0] ? p->rc_same[0] : p->rc_same[1];
		if (ok_same != 1 || failed_same != CONCERT_ESTATE)
			fail_msg("pair %d: paying one hold twice gave %d and %d", i, p->rc_same[0],
				 p->rc_same[1]);
		int ok_cancel = (p->rc_cancel[0] == 0) + (p->rc_cancel[1] == 0);
		int failed_cancel = p->rc_cancel[0] ? p->rc_cancel[0] : p->rc_cancel[1];
		if (ok_cancel != 1 || failed_cancel != CONCERT_ESTATE)
			fail_msg("pair %d: cancelling one reservation twice gave %d and %d", i,
				 p->rc_cancel[0], p->rc_cancel[1]);
		assert_int_equal(p->rc_topup, 0);
		int64_t won = p->rc_two[0] == 0 ? 99000 : 77000;
		assert_int_equal(h_check_wallet(h, p->user), 99000 + 300000 - won);
		int lost = p->rc_two[0] == 0 ? 1 : 0;
		assert_int_equal(h_hold_read(h, p->hold_ids[lost]).state, CONCERT_HOLD_HELD);
		assert_int_equal(h_hold_read(h, p->same_hold).state, CONCERT_HOLD_PAID);
		assert_int_equal(h_seat_state(h, v.schedule_id, 3 * i + 3), CONCERT_SEAT_AVAILABLE);
	}
	pthread_barrier_destroy(&start);
	h_check_audit(h);
}

/* ---- Jepsen-style bank: idempotent charges and payments retried at once --- */

enum { BANK_USERS = 8, BANK_RETRIERS = 4, BANK_THREADS = BANK_USERS * BANK_RETRIERS,
       BANK_KEYS = 50 };

typedef struct bank_shared {
	harness *h;
	h_venue v;
	pthread_barrier_t round;
	char users[BANK_USERS][H_NAME_SIZE];
	char keys[BANK_USERS][BANK_KEYS][H_NAME_SIZE];
	int rc[BANK_USERS][BANK_KEYS][BANK_RETRIERS];
	int64_t balance[BANK_USERS][BANK_KEYS][BANK_RETRIERS];
	int64_t holds[BANK_USERS];
	char pay_keys[BANK_USERS][H_NAME_SIZE];
	int pay_rc[BANK_USERS][BANK_RETRIERS];
	int64_t payment_ids[BANK_USERS][BANK_RETRIERS];
} bank_shared;

typedef struct bank_worker {
	bank_shared *s;
	int user, retrier;
} bank_worker;

static int64_t bank_amount(int user, int key, int retrier)
{
	int64_t amount = 100000 + 37 * key + user;
	/* Every fifth key, one retrier sends a wrong amount with the same key. */
	return (key % 5 == 0 && retrier == BANK_RETRIERS - 1) ? amount + 1 : amount;
}

static void *bank_worker_run(void *arg)
{
	bank_worker *w = arg;
	bank_shared *s = w->s;
	for (int k = 0; k < BANK_KEYS; k++) {
		pthread_barrier_wait(&s->round);
		int64_t balance = -1;
		s->rc[w->user][k][w->retrier] =
			h_charge(s->h, &balance, s->users[w->user],
				 bank_amount(w->user, k, w->retrier), s->keys[w->user][k]);
		s->balance[w->user][k][w->retrier] = balance;
	}
	pthread_barrier_wait(&s->round);
	concert_payment *p = NULL;
	s->pay_rc[w->user][w->retrier] = h_pay(s->h, &p, s->users[w->user], s->v.concert_id,
					       s->holds[w->user], s->pay_keys[w->user]);
	s->payment_ids[w->user][w->retrier] = p ? p->payment_id : 0;
	concert_free(p);
	return NULL;
}

static void test_bank_idempotency(void **state)
{
	harness *h = *state;
	static bank_shared shared;
	bank_shared *s = &shared;
	memset(s, 0, sizeof(*s));
	s->h = h;
	h_make_venue(h, &s->v, BANK_USERS);
	pthread_barrier_init(&s->round, NULL, BANK_THREADS);
	for (int u = 0; u < BANK_USERS; u++) {
		h_unique(s->users[u], "bank");
		for (int k = 0; k < BANK_KEYS; k++)
			h_unique(s->keys[u][k], "charge");
		h_unique(s->pay_keys[u], "pay");
		int32_t seat[] = { u + 1 };
		concert_hold *hold = NULL;
		assert_ok(h_hold(h, &hold, s->users[u], &s->v, seat, 1));
		s->holds[u] = hold->id;
		concert_free(hold);
	}
	bank_worker w[BANK_THREADS];
	for (int t = 0; t < BANK_THREADS; t++)
		w[t] = (bank_worker){ s, t % BANK_USERS, t / BANK_USERS };
	run_threads(BANK_THREADS, bank_worker_run, w, sizeof(w[0]));

	int64_t expected[BANK_USERS], first_after[BANK_USERS], first_amount[BANK_USERS];
	for (int u = 0; u < BANK_USERS; u++) {
		int64_t total = 0;
		int64_t after[BANK_KEYS];
		for (int k = 0; k < BANK_KEYS; k++) {
			/* Exactly one amount took effect; every success reports it. */
			int64_t amount = 0, balance = -1;
			for (int r = 0; r < BANK_RETRIERS; r++) {
				int rc = s->rc[u][k][r];
				if (rc == CONCERT_EIDEMPOTENCY)
					continue;
				if (rc != 0)
					fail_msg("charge user %d key %d retrier %d: %d %s", u, k, r, rc,
						 concert_error_name(rc));
				int64_t a = bank_amount(u, k, r);
				if (amount && (a != amount || s->balance[u][k][r] != balance))
					fail_msg("user %d key %d: two effects (%lld -> %lld, %lld -> %lld)",
						 u, k, (long long)amount, (long long)balance, (long long)a,
						 (long long)s->balance[u][k][r]);
				amount = a;
				balance = s->balance[u][k][r];
			}
			if (!amount)
				fail_msg("user %d key %d: no retry succeeded", u, k);
			if (k % 5)
				for (int r = 0; r < BANK_RETRIERS; r++)
					assert_int_equal(s->rc[u][k][r], 0);
			total += amount;
			after[k] = balance;
			if (k == 0) {
				first_after[u] = balance;
				first_amount[u] = amount;
			}
		}
		/* The history has one CHARGE per key, with the balances reported. */
		concert_wallet_tx_list *list = NULL;
		assert_ok(h->store->history(h->store_ctx, &list, s->users[u], 0, 1000));
		size_t charges = 0;
		for (size_t i = 0; i < list->count; i++) {
			if (list->items[i].kind != CONCERT_TX_CHARGE)
				continue;
			charges++;
			int matched = 0;
			for (int k = 0; k < BANK_KEYS; k++)
				matched += after[k] == list->items[i].balance_after;
			assert_int_equal(matched, 1);
		}
		concert_free(list);
		assert_int_equal(charges, BANK_KEYS);

		/* The keyed payment: every retry got the one payment. */
		int64_t payment_id = 0;
		for (int r = 0; r < BANK_RETRIERS; r++) {
			assert_int_equal(s->pay_rc[u][r], 0);
			if (payment_id)
				assert_int_equal(s->payment_ids[u][r], payment_id);
			payment_id = s->payment_ids[u][r];
		}
		int32_t seat[] = { u + 1 };
		expected[u] = total - h_amount_of(seat, 1);
		assert_int_equal(h_check_wallet(h, s->users[u]), expected[u]);
	}
	/* A durable store replays the interleaved journal to the same state,
	 * idempotency keys included. */
	if (h_reopen(h)) {
		for (int u = 0; u < BANK_USERS; u++) {
			assert_int_equal(h_check_wallet(h, s->users[u]), expected[u]);
			int64_t repeat = -1;
			assert_ok(h_charge(h, &repeat, s->users[u], first_amount[u], s->keys[u][0]));
			assert_int_equal(repeat, first_after[u]);
			assert_int_equal(h_balance(h, s->users[u]), expected[u]);
		}
	}
	pthread_barrier_destroy(&s->round);
	h_check_audit(h);
}

int main(void)
{
	h_apply_filters();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hold_race, h_setup_store, h_teardown),
		cmocka_unit_test_setup_teardown(test_limit_race, h_setup_store, h_teardown),
		cmocka_unit_test_setup_teardown(test_money_race, h_setup_store, h_teardown),
		cmocka_unit_test_setup_teardown(test_double_spend, h_setup_store, h_teardown),
		cmocka_unit_test_setup_teardown(test_bank_idempotency, h_setup_store, h_teardown),
	};
	return cmocka_run_group_tests_name("conformance.concurrency", tests, NULL, NULL);
}
