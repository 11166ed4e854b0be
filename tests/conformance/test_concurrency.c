/*
 * Concurrency conformance: many threads racing on one backend instance.
 * Threads only record what they saw (cmocka asserts are not thread-safe);
 * the main thread checks the records and the store's own state after join.
 * No sleeps: threads start together on a barrier and run flat out.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance/harness.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- failures seen by worker threads -------------------------------------- */

static _Atomic int thread_failures;
static pthread_mutex_t failure_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_failure[512];

static void record_failure(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void record_failure(const char *fmt, ...)
{
	if (atomic_fetch_add(&thread_failures, 1) == 0) {
		va_list ap;
		va_start(ap, fmt);
		pthread_mutex_lock(&failure_lock);
		vsnprintf(first_failure, sizeof(first_failure), fmt, ap);
		pthread_mutex_unlock(&failure_lock);
		va_end(ap);
	}
}

#define CHECK(cond, ...)                      \
	do {                                  \
		if (!(cond))                  \
			record_failure(__VA_ARGS__); \
	} while (0)

static void reset_failures(void)
{
	atomic_store(&thread_failures, 0);
	first_failure[0] = '\0';
}

static void assert_no_thread_failures(void)
{
	int n = atomic_load(&thread_failures);
	if (n)
		fail_msg("%d failures in worker threads; first: %s", n, first_failure);
}

typedef void *(*thread_fn)(void *);

static void run_threads(size_t n, thread_fn fn, void *args, size_t arg_size)
{
	pthread_t *threads = calloc(n, sizeof(*threads));
	assert_non_null(threads);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, fn, (char *)args + i * arg_size), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(pthread_join(threads[i], NULL), 0);
	free(threads);
}

/* Random subset of 1..max seats of 1..seats, ascending. */
static size_t random_seats(unsigned *seed, int32_t *out, size_t max, int32_t seats)
{
	size_t n = 1 + (size_t)rand_r(seed) % max, count = 0;
	while (count < n) {
		int32_t s = 1 + rand_r(seed) % seats;
		size_t i = 0;
		while (i < count && out[i] < s)
			i++;
		if (i < count && out[i] == s)
			continue;
		memmove(&out[i + 1], &out[i], (count - i) * sizeof(*out));
		out[i] = s;
		count++;
	}
	return count;
}

/* ---- 1. holds racing on overlapping seats ------------------------------------ */

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

/* ---- 1b. one user's threads racing against the per-user limits ---------------- */

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

/* ---- 2. payments, cancellations and charges racing -------------------------- */

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
	print_message("money race: %zu reservations, %zu confirmed\n", s->reservation_count,
		      confirmed);
	pthread_barrier_destroy(&s->start);
	pthread_mutex_destroy(&s->lock);
	h_check_audit(h);
}

/* ---- 3. double spending: the same money, hold or reservation twice at once --- */

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

/* ---- 4. Jepsen-style bank: idempotent charges and payments retried at once --- */

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
		assert_int_equal(h_check_wallet(h, s->users[u]), total - h_amount_of(seat, 1));
	}
	pthread_barrier_destroy(&s->round);
	h_check_audit(h);
}

/* ---- 5. holds expiring while time moves, with a sweeper racing --------------- */

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
	print_message("expiry race: %zu holds, %llu paid, %llu refused as expired, %llu swept\n",
		      count, (unsigned long long)atomic_load(&s->paid),
		      (unsigned long long)atomic_load(&s->expired_refusals),
		      (unsigned long long)atomic_load(&s->swept));
	pthread_barrier_destroy(&s->start);
	h_check_audit(h);
}

/* ---- 6. the queue under concurrent entry and completion ---------------------- */

enum { Q_THREADS = 8, Q_PER_THREAD = 150, Q_USERS = Q_THREADS * Q_PER_THREAD, Q_MAX = 10,
       Q_COMPLETERS = 4 };

typedef struct queue_shared {
	harness *h;
	concert_queue_policy policy;
	int64_t concert;
	pthread_barrier_t start;
	char users[Q_USERS][H_NAME_SIZE];
	_Atomic int64_t tokens[Q_USERS];   /* 0 until entered */
	int64_t second_tokens[Q_USERS];
	int created[Q_USERS][2];
	_Atomic int entering;              /* threads still entering */
	_Atomic int max_seen_active;
	int64_t by_rank[Q_USERS + 1];      /* token of admission rank r (1-based) */
	_Atomic int64_t completions_started;
} queue_shared;

typedef struct queue_worker {
	queue_shared *s;
	int index;
} queue_worker;

static int q_status_of(queue_shared *s, concert_queue_entry *e, int64_t token)
{
	return s->h->queue->status(s->h->queue_ctx, e, s->concert, token, 0, &s->policy,
				   h_now(s->h));
}

static void *queue_enter_run(void *arg)
{
	queue_worker *w = arg;
	queue_shared *s = w->s;
	pthread_barrier_wait(&s->start);
	/* Own block first, then the next thread's block again: every user is
	 * entered by two threads, often at the same moment. */
	for (int pass = 0; pass < 2; pass++) {
		int block = (w->index + pass) % Q_THREADS;
		for (int i = 0; i < Q_PER_THREAD; i++) {
			int u = block * Q_PER_THREAD + i;
			concert_queue_entry e;
			int rc = s->h->queue->enter(s->h->queue_ctx, &e, s->users[u], s->concert,
						    &s->policy, h_now(s->h));
			CHECK(rc == 0, "enter: %d %s", rc, concert_error_name(rc));
			if (rc)
				continue;
			s->created[u][pass] = e.created;
			if (pass == 0)
				atomic_store(&s->tokens[u], e.token_id);
			else
				s->second_tokens[u] = e.token_id;
		}
	}
	atomic_fetch_sub(&s->entering, 1);
	return NULL;
}

/* While users enter, nothing completes or expires: the ACTIVE set only
 * grows, so any count of it is a lower bound and must stay <= max_active. */
static void *queue_sampler_run(void *arg)
{
	queue_shared *s = arg;
	pthread_barrier_wait(&s->start);
	do {
		int active = 0;
		for (int u = 0; u < Q_USERS; u++) {
			int64_t token = atomic_load(&s->tokens[u]);
			concert_queue_entry e;
			if (!token)
				continue;
			int rc = q_status_of(s, &e, token);
			CHECK(rc == 0, "status: %d %s", rc, concert_error_name(rc));
			active += rc == 0 && e.state == CONCERT_QUEUE_ACTIVE;
		}
		CHECK(active <= Q_MAX, "%d tokens ACTIVE with max_active %d", active, Q_MAX);
		if (active > atomic_load(&s->max_seen_active))
			atomic_store(&s->max_seen_active, active);
	} while (atomic_load(&s->entering) > 0);
	return NULL;
}

/*
 * Completer c handles ranks c+1, c+1+Q_COMPLETERS, ... in order: it polls
 * the token until ACTIVE, checks FIFO and max_active against what has been
 * completed, then completes it.
 */
static void *queue_complete_run(void *arg)
{
	queue_worker *w = arg;
	queue_shared *s = w->s;
	for (int r = w->index + 1; r <= Q_USERS; r += Q_COMPLETERS) {
		int64_t token = s->by_rank[r];
		concert_queue_entry e;
		for (long polls = 0;; polls++) {
			CHECK(polls < 10000000, "rank %d never admitted", r);
			if (polls >= 10000000)
				return NULL;
			int rc = q_status_of(s, &e, token);
			CHECK(rc == 0, "status: %d %s", rc, concert_error_name(rc));
			if (rc)
				return NULL;
			if (e.state == CONCERT_QUEUE_ACTIVE)
				break;
			CHECK(e.state == CONCERT_QUEUE_WAITING, "rank %d is %s", r,
			      concert_queue_state_name(e.state));
			if (e.state != CONCERT_QUEUE_WAITING)
				return NULL;
			CHECK(e.position >= 1 && e.position <= r - Q_MAX,
			      "rank %d waits at position %lld", r, (long long)e.position);
			sched_yield();
		}
		/* Admitted: at least r - max_active tokens ahead of it were done
		 * (started only overestimates the completions). */
		int64_t started = atomic_load(&s->completions_started);
		CHECK(started >= r - Q_MAX, "rank %d ACTIVE after only %lld completions", r,
		      (long long)started);
		/* FIFO: whoever is ahead has been admitted too. */
		if (r > 1) {
			concert_queue_entry ahead;
			int rc = q_status_of(s, &ahead, s->by_rank[r - 1]);
			CHECK(rc == 0 && ahead.state != CONCERT_QUEUE_WAITING,
			      "rank %d ACTIVE while rank %d waits", r, r - 1);
		}
		atomic_fetch_add(&s->completions_started, 1);
		int rc = s->h->queue->complete(s->h->queue_ctx, s->concert, token, h_now(s->h));
		CHECK(rc == 0, "complete rank %d: %d %s", r, rc, concert_error_name(rc));
	}
	return NULL;
}

static void *queue_thread_run(void *arg)
{
	queue_worker *w = arg;
	if (w->index < 0)
		return queue_sampler_run(w->s);
	return queue_enter_run(w);
}

static void test_queue_race(void **state)
{
	harness *h = *state;
	reset_failures();
	static queue_shared shared;
	queue_shared *s = &shared;
	memset(s, 0, sizeof(*s));
	s->h = h;
	s->policy = (concert_queue_policy){ Q_MAX, 0, H_HOUR, H_HOUR };
	s->concert = h_unique_id();
	pthread_barrier_init(&s->start, NULL, Q_THREADS + 1);
	atomic_store(&s->entering, Q_THREADS);
	for (int u = 0; u < Q_USERS; u++)
		h_unique(s->users[u], "fan");

	queue_worker w[Q_THREADS + 1];
	for (int t = 0; t < Q_THREADS; t++)
		w[t] = (queue_worker){ s, t };
	w[Q_THREADS] = (queue_worker){ s, -1 };
	run_threads(Q_THREADS + 1, queue_thread_run, w, sizeof(w[0]));
	assert_no_thread_failures();

	/* One live token per user, created exactly once. */
	for (int u = 0; u < Q_USERS; u++) {
		assert_int_equal(s->second_tokens[u], atomic_load(&s->tokens[u]));
		assert_int_equal(s->created[u][0] + s->created[u][1], 1);
	}
	/* Exactly max_active ACTIVE; the others hold positions 1..N-max once each. */
	static char seen[Q_USERS + 1];
	memset(seen, 0, sizeof(seen));
	int active = 0;
	for (int u = 0; u < Q_USERS; u++) {
		concert_queue_entry e;
		assert_ok(q_status_of(s, &e, atomic_load(&s->tokens[u])));
		if (e.state == CONCERT_QUEUE_ACTIVE) {
			active++;
			assert_true(active <= Q_MAX);
			s->by_rank[active] = e.token_id;
			continue;
		}
		assert_int_equal(e.state, CONCERT_QUEUE_WAITING);
		assert_true(e.position >= 1 && e.position <= Q_USERS - Q_MAX);
		assert_false(seen[e.position]);
		seen[e.position] = 1;
		s->by_rank[Q_MAX + e.position] = e.token_id;
	}
	assert_int_equal(active, Q_MAX);
	assert_true(atomic_load(&s->max_seen_active) <= Q_MAX);

	/* Drain: completions free slots; admission must follow the ranks. */
	queue_worker c[Q_COMPLETERS];
	for (int t = 0; t < Q_COMPLETERS; t++)
		c[t] = (queue_worker){ s, t };
	run_threads(Q_COMPLETERS, queue_complete_run, c, sizeof(c[0]));
	assert_no_thread_failures();
	assert_int_equal(atomic_load(&s->completions_started), Q_USERS);
	for (int r = 1; r <= Q_USERS; r += 37) {
		concert_queue_entry e;
		assert_ok(q_status_of(s, &e, s->by_rank[r]));
		assert_int_equal(e.state, CONCERT_QUEUE_DONE);
	}
	pthread_barrier_destroy(&s->start);
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
		cmocka_unit_test_setup_teardown(test_expiry_race, h_setup_store, h_teardown),
		cmocka_unit_test_setup_teardown(test_queue_race, h_setup_queue, h_teardown),
	};
	return cmocka_run_group_tests_name("conformance.concurrency", tests, NULL, NULL);
}
