/*
 * Queue backend conformance: concert_queue_backend through the vtable of the
 * backend named by CONCERT_TEST_QUEUE. Every concert id is unique to the
 * run, so a shared Redis/PostgreSQL holds nothing else under it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance/harness.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static concert_queue_policy policy(uint32_t max_active, uint32_t per_second,
				   concert_time idle_ttl, concert_time active_ttl)
{
	concert_queue_policy p = { max_active, per_second, idle_ttl, active_ttl };
	return p;
}

static int q_enter(harness *h, concert_queue_entry *out, const char *user, int64_t concert_id,
		   const concert_queue_policy *p)
{
	memset(out, 0x5a, sizeof(*out));
	return h->queue->enter(h->queue_ctx, out, user, concert_id, p, h_now(h));
}

static int q_status(harness *h, concert_queue_entry *out, int64_t concert_id, int64_t token_id,
		    int touch, const concert_queue_policy *p)
{
	memset(out, 0x5a, sizeof(*out));
	return h->queue->status(h->queue_ctx, out, concert_id, token_id, touch, p, h_now(h));
}

/* The entry of a token; fails the test on error. */
static concert_queue_entry q_get(harness *h, int64_t concert_id, int64_t token_id,
				 const concert_queue_policy *p)
{
	concert_queue_entry e;
	assert_ok(q_status(h, &e, concert_id, token_id, 0, p));
	assert_int_equal(e.token_id, token_id);
	assert_int_equal(e.concert_id, concert_id);
	return e;
}

static void assert_state(harness *h, int64_t concert_id, int64_t token_id,
			 const concert_queue_policy *p, int32_t state, int64_t position)
{
	concert_queue_entry e = q_get(h, concert_id, token_id, p);
	if (e.state != state || e.position != position)
		fail_msg("token %lld is %s at position %lld, expected %s at %lld",
			 (long long)token_id, concert_queue_state_name(e.state), (long long)e.position,
			 concert_queue_state_name(state), (long long)position);
}

/* Enters `n` fresh users; tokens[i] gets user i's token id. */
static void enter_users(harness *h, int64_t concert_id, const concert_queue_policy *p,
			int64_t *tokens, char (*users)[H_NAME_SIZE], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		concert_queue_entry e;
		h_unique(users[i], "quser");
		assert_ok(q_enter(h, &e, users[i], concert_id, p));
		assert_int_equal(e.created, 1);
		assert_string_equal(e.user_id, users[i]);
		tokens[i] = e.token_id;
	}
}

static size_t count_active(harness *h, int64_t concert_id, const int64_t *tokens, size_t n,
			   const concert_queue_policy *p)
{
	size_t active = 0;
	for (size_t i = 0; i < n; i++)
		active += q_get(h, concert_id, tokens[i], p).state == CONCERT_QUEUE_ACTIVE;
	return active;
}

static void test_enter_idempotent(void **state)
{
	harness *h = *state;
	concert_queue_policy p = policy(1, 0, 5 * H_MINUTE, 10 * H_MINUTE);
	int64_t concert = h_unique_id(), other_concert = h_unique_id();
	char u1[H_NAME_SIZE], u2[H_NAME_SIZE];
	h_unique(u1, "quser");
	h_unique(u2, "quser");
	concert_time t0 = h_now(h);
	concert_queue_entry a, again, b, elsewhere;

	assert_ok(q_enter(h, &a, u1, concert, &p));
	assert_true(a.token_id > 0);
	assert_int_equal(a.concert_id, concert);
	assert_int_equal(a.created, 1);
	assert_int_equal(a.state, CONCERT_QUEUE_ACTIVE);
	assert_int_equal(a.position, 0);
	assert_int_equal(a.issued_at, t0);
	assert_int_equal(a.expires_at, t0 + p.active_ttl);
	assert_int_equal(a.admitted_total, 1);
	assert_string_equal(a.user_id, u1);

	h_advance(h, H_SECOND);
	assert_ok(q_enter(h, &b, u2, concert, &p));
	assert_true(b.token_id != a.token_id);
	assert_int_equal(b.created, 1);
	assert_int_equal(b.state, CONCERT_QUEUE_WAITING);
	assert_int_equal(b.position, 1);
	assert_int_equal(b.issued_at, t0 + H_SECOND);
	assert_int_equal(b.expires_at, t0 + H_SECOND + p.wait_idle_ttl);
	assert_int_equal(b.admitted_total, 1);

	/* Entering again returns the live token, ACTIVE or WAITING. */
	h_advance(h, H_SECOND);
	assert_ok(q_enter(h, &again, u1, concert, &p));
	assert_int_equal(again.token_id, a.token_id);
	assert_int_equal(again.created, 0);
	assert_int_equal(again.state, CONCERT_QUEUE_ACTIVE);
	assert_int_equal(again.issued_at, t0);
	assert_ok(q_enter(h, &again, u2, concert, &p));
	assert_int_equal(again.token_id, b.token_id);
	assert_int_equal(again.created, 0);
	assert_int_equal(again.state, CONCERT_QUEUE_WAITING);
	assert_int_equal(again.position, 1);

	/* One token per user and concert: another concert is another token. */
	assert_ok(q_enter(h, &elsewhere, u1, other_concert, &p));
	assert_int_equal(elsewhere.created, 1);
	assert_true(elsewhere.token_id != a.token_id);
	assert_int_equal(elsewhere.concert_id, other_concert);
	assert_int_equal(elsewhere.state, CONCERT_QUEUE_ACTIVE);

	/* DONE is not live: entering again makes a new token at the back. */
	assert_ok(h->queue->complete(h->queue_ctx, concert, a.token_id, h_now(h)));
	assert_state(h, concert, b.token_id, &p, CONCERT_QUEUE_ACTIVE, 0);
	assert_ok(q_enter(h, &again, u1, concert, &p));
	assert_int_equal(again.created, 1);
	assert_true(again.token_id != a.token_id && again.token_id != b.token_id);
	assert_int_equal(again.state, CONCERT_QUEUE_WAITING);
	assert_int_equal(again.position, 1);
	assert_int_equal(again.admitted_total, 2);
	assert_state(h, concert, a.token_id, &p, CONCERT_QUEUE_DONE, 0);

	/* The one-live-token-per-user index and the counters survive a reopen. */
	int64_t waiting = again.token_id;
	assert_int_equal(h_reopen(h), h->durable);
	assert_ok(q_enter(h, &again, u1, concert, &p));
	assert_int_equal(again.token_id, waiting);
	assert_int_equal(again.created, 0);
	assert_int_equal(again.position, 1);
	assert_int_equal(again.admitted_total, 2);
	assert_ok(q_enter(h, &again, u2, concert, &p));
	assert_int_equal(again.token_id, b.token_id);
	assert_int_equal(again.created, 0);
	assert_int_equal(again.state, CONCERT_QUEUE_ACTIVE);
	assert_state(h, concert, a.token_id, &p, CONCERT_QUEUE_DONE, 0);
}

static void test_fifo_admission(void **state)
{
	harness *h = *state;
	concert_queue_policy p = policy(2, 0, H_HOUR, H_HOUR);
	int64_t concert = h_unique_id();
	int64_t tok[6];
	char users[6][H_NAME_SIZE];
	enter_users(h, concert, &p, tok, users, 6);
	assert_state(h, concert, tok[0], &p, CONCERT_QUEUE_ACTIVE, 0);
	assert_state(h, concert, tok[1], &p, CONCERT_QUEUE_ACTIVE, 0);
	for (int i = 2; i < 6; i++)
		assert_state(h, concert, tok[i], &p, CONCERT_QUEUE_WAITING, i - 1);

	assert_int_equal(h_reopen(h), h->durable);
	for (int i = 2; i < 6; i++)
		assert_state(h, concert, tok[i], &p, CONCERT_QUEUE_WAITING, i - 1);

	/* Each freed slot goes to the head of the queue, and only to it.
	 * (complete may admit by itself; admit then finds nothing to do.) */
	assert_ok(h->queue->complete(h->queue_ctx, concert, tok[0], h_now(h)));
	uint32_t admitted = 99;
	assert_ok(h->queue->admit(h->queue_ctx, &admitted, concert, &p, h_now(h)));
	assert_true(admitted <= 1);
	assert_state(h, concert, tok[2], &p, CONCERT_QUEUE_ACTIVE, 0);
	assert_state(h, concert, tok[3], &p, CONCERT_QUEUE_WAITING, 1);
	assert_state(h, concert, tok[5], &p, CONCERT_QUEUE_WAITING, 3);
	assert_ok(h->queue->admit(h->queue_ctx, &admitted, concert, &p, h_now(h)));
	assert_int_equal(admitted, 0);

	assert_ok(h->queue->leave(h->queue_ctx, concert, tok[1], h_now(h)));
	assert_ok(h->queue->complete(h->queue_ctx, concert, tok[2], h_now(h)));
	assert_ok(h->queue->admit(h->queue_ctx, &admitted, concert, &p, h_now(h)));
	assert_true(admitted <= 2);
	assert_state(h, concert, tok[3], &p, CONCERT_QUEUE_ACTIVE, 0);
	assert_state(h, concert, tok[4], &p, CONCERT_QUEUE_ACTIVE, 0);
	assert_state(h, concert, tok[5], &p, CONCERT_QUEUE_WAITING, 1);
	assert_state(h, concert, tok[1], &p, CONCERT_QUEUE_EXPIRED, 0);
	assert_int_equal(q_get(h, concert, tok[5], &p).admitted_total, 5);

	assert_int_equal(h_reopen(h), h->durable);
	assert_state(h, concert, tok[3], &p, CONCERT_QUEUE_ACTIVE, 0);
	assert_state(h, concert, tok[2], &p, CONCERT_QUEUE_DONE, 0);
	assert_state(h, concert, tok[5], &p, CONCERT_QUEUE_WAITING, 1);
	assert_int_equal(count_active(h, concert, tok, 6, &p), 2);
}

static void test_position_after_leave(void **state)
{
	harness *h = *state;
	concert_queue_policy p = policy(1, 0, H_HOUR, H_HOUR);
	int64_t concert = h_unique_id();
	int64_t tok[6];
	char users[6][H_NAME_SIZE];
	enter_users(h, concert, &p, tok, users, 6);
	for (int i = 1; i < 6; i++)
		assert_state(h, concert, tok[i], &p, CONCERT_QUEUE_WAITING, i);

	/* Leaving from the middle moves only those behind. */
	assert_ok(h->queue->leave(h->queue_ctx, concert, tok[3], h_now(h)));
	assert_state(h, concert, tok[1], &p, CONCERT_QUEUE_WAITING, 1);
	assert_state(h, concert, tok[2], &p, CONCERT_QUEUE_WAITING, 2);
	assert_state(h, concert, tok[3], &p, CONCERT_QUEUE_EXPIRED, 0);
	assert_state(h, concert, tok[4], &p, CONCERT_QUEUE_WAITING, 3);
	assert_state(h, concert, tok[5], &p, CONCERT_QUEUE_WAITING, 4);
	assert_rc(h->queue->leave(h->queue_ctx, concert, tok[3], h_now(h)), CONCERT_EEXPIRED);

	/* The leaver may come back, at the back. */
	concert_queue_entry e;
	assert_ok(q_enter(h, &e, users[3], concert, &p));
	assert_int_equal(e.created, 1);
	assert_true(e.token_id != tok[3]);
	assert_int_equal(e.state, CONCERT_QUEUE_WAITING);
	assert_int_equal(e.position, 5);

	/* The head leaving moves everyone up. */
	assert_ok(h->queue->leave(h->queue_ctx, concert, tok[1], h_now(h)));
	assert_state(h, concert, tok[2], &p, CONCERT_QUEUE_WAITING, 1);
	assert_state(h, concert, tok[5], &p, CONCERT_QUEUE_WAITING, 3);
	assert_state(h, concert, e.token_id, &p, CONCERT_QUEUE_WAITING, 4);
}

/*
 * Positions against a model: users enter, leave, finish, poll and go idle
 * in a seeded random order, and after every step each token's state and
 * position must be what a plain list in arrival order says (expire what is
 * past its deadline, then admit from the head while fewer than max_active
 * are ACTIVE). Tokens leave from the head, from the middle and by expiry,
 * so a backend that keeps positions in any other form than a rank (the
 * Redis one counts from its head) is checked on every way out.
 */
#define M_USERS 48
#define M_STEPS 160

typedef struct model_token {
	int64_t id;
	int32_t state;
	concert_time expires;
} model_token;

static void model_settle(model_token *t, size_t n, uint32_t max_active, concert_time now,
			 concert_time active_ttl)
{
	size_t active = 0;
	for (size_t i = 0; i < n; i++) {
		if (t[i].state == CONCERT_QUEUE_WAITING && t[i].expires <= now)
			t[i].state = CONCERT_QUEUE_EXPIRED;
		active += t[i].state == CONCERT_QUEUE_ACTIVE;
	}
	for (size_t i = 0; i < n && active < max_active; i++)
		if (t[i].state == CONCERT_QUEUE_WAITING) {
			t[i].state = CONCERT_QUEUE_ACTIVE;
			t[i].expires = now + active_ttl;
			active++;
		}
}

static void test_positions_follow_the_model(void **state)
{
	harness *h = *state;
	concert_queue_policy p = policy(3, 0, 10 * H_SECOND, H_HOUR);
	int64_t concert = h_unique_id();
	model_token t[M_USERS + M_STEPS];
	size_t n = 0;
	uint64_t rng = 0x2545f4914f6cdd1dULL;
	for (int step = 0; step < M_STEPS + M_USERS; step++) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		size_t pick = n ? (size_t)(rng >> 20) % n : 0;
		int action = step < M_USERS ? 0 : (int)(rng % 8);
		concert_queue_entry e;
		if (action <= 1) { /* a new user at the back */
			char user[H_NAME_SIZE];
			assert_ok(q_enter(h, &e, h_unique(user, "quser"), concert, &p));
			t[n++] = (model_token){ e.token_id, CONCERT_QUEUE_WAITING,
						h_now(h) + p.wait_idle_ttl };
		} else if (action == 2 && t[pick].state <= CONCERT_QUEUE_ACTIVE) {
			assert_ok(h->queue->leave(h->queue_ctx, concert, t[pick].id, h_now(h)));
			t[pick].state = CONCERT_QUEUE_EXPIRED;
		} else if (action == 3 && t[pick].state == CONCERT_QUEUE_ACTIVE) {
			assert_ok(h->queue->complete(h->queue_ctx, concert, t[pick].id, h_now(h)));
			t[pick].state = CONCERT_QUEUE_DONE;
		} else if (action >= 4) { /* time passes; every other waiting user polls */
			h_advance(h, (concert_time)(rng % 4) * H_SECOND);
			model_settle(t, n, p.max_active, h_now(h), p.active_ttl);
			for (size_t i = step % 2; i < n; i += 2)
				if (t[i].state == CONCERT_QUEUE_WAITING) {
					assert_ok(q_status(h, &e, concert, t[i].id, 1, &p));
					t[i].expires = h_now(h) + p.wait_idle_ttl;
				}
		}
		model_settle(t, n, p.max_active, h_now(h), p.active_ttl);
		int64_t position = 0;
		for (size_t i = 0; i < n; i++) {
			int waiting = t[i].state == CONCERT_QUEUE_WAITING;
			assert_state(h, concert, t[i].id, &p, t[i].state, waiting ? ++position : 0);
		}
	}
}

static void test_max_active(void **state)
{
	harness *h = *state;
	enum { USERS = 20, MAX = 3 };
	concert_queue_policy p = policy(MAX, 0, H_HOUR, H_HOUR);
	int64_t concert = h_unique_id();
	int64_t tok[USERS];
	char users[USERS][H_NAME_SIZE];
	for (size_t i = 0; i < USERS; i++) {
		enter_users(h, concert, &p, &tok[i], &users[i], 1);
		size_t active = count_active(h, concert, tok, i + 1, &p);
		assert_int_equal(active, i + 1 < MAX ? i + 1 : MAX);
	}
	/* Free slots one by one: always exactly MAX active while any wait. */
	for (size_t i = 0; i < USERS; i++) {
		if (i % 2)
			assert_ok(h->queue->leave(h->queue_ctx, concert, tok[i], h_now(h)));
		else
			assert_ok(h->queue->complete(h->queue_ctx, concert, tok[i], h_now(h)));
		size_t left = USERS - i - 1;
		assert_int_equal(count_active(h, concert, tok, USERS, &p), left < MAX ? left : MAX);
		if (i + MAX < USERS)
			assert_state(h, concert, tok[i + MAX], &p, CONCERT_QUEUE_ACTIVE, 0);
	}
}

static void test_admit_per_second(void **state)
{
	harness *h = *state;
	enum { USERS = 10, RATE = 2 };
	concert_queue_policy p = policy(100, RATE, H_HOUR, H_HOUR);
	int64_t concert = h_unique_id();
	int64_t tok[USERS];
	char users[USERS][H_NAME_SIZE];
	concert_time t0 = h_now(h);
	enter_users(h, concert, &p, tok, users, USERS);
	size_t active = count_active(h, concert, tok, USERS, &p);
	assert_true(active >= 1);
	assert_true(active <= RATE);
	/* Admission is FIFO even when rate-limited. */
	for (size_t i = 0; i < USERS; i++)
		assert_int_equal(q_get(h, concert, tok[i], &p).state,
				 i < active ? CONCERT_QUEUE_ACTIVE : CONCERT_QUEUE_WAITING);

	for (int k = 1; k <= 4; k++) {
		h_set_time(h, t0 + k * H_SECOND + 1);
		uint32_t admitted = 0;
		assert_ok(h->queue->admit(h->queue_ctx, &admitted, concert, &p, h_now(h)));
		size_t now_active = count_active(h, concert, tok, USERS, &p);
		if (now_active <= active || now_active > (size_t)RATE * (size_t)(k + 1))
			fail_msg("after %d s: %zu active (was %zu), rate %d/s allows at most %d",
				 k, now_active, active, RATE, RATE * (k + 1));
		assert_true(admitted >= 1);
		assert_true(admitted <= now_active - active);
		active = now_active;
		assert_int_equal(q_get(h, concert, tok[0], &p).admitted_total, active);
	}
	h_set_time(h, t0 + 10 * H_SECOND);
	uint32_t admitted = 0;
	assert_ok(h->queue->admit(h->queue_ctx, &admitted, concert, &p, h_now(h)));
	assert_int_equal(count_active(h, concert, tok, USERS, &p), USERS);
}

static void test_idle_expiry(void **state)
{
	harness *h = *state;
	const concert_time idle = 10 * H_SECOND;
	concert_queue_policy p = policy(1, 0, idle, H_HOUR);
	int64_t concert = h_unique_id();
	concert_time t0 = h_now(h);
	int64_t tok[3];
	char users[3][H_NAME_SIZE];
	enter_users(h, concert, &p, tok, users, 3);   /* 0 ACTIVE, 1 and 2 WAITING */
	h_set_time(h, t0 + 5 * H_SECOND);
	int64_t late;
	char late_user[H_NAME_SIZE];
	enter_users(h, concert, &p, &late, &late_user, 1);
	assert_int_equal(q_get(h, concert, late, &p).expires_at, t0 + 5 * H_SECOND + idle);

	/* A status read is not activity; a touch is. */
	h_set_time(h, t0 + 9 * H_SECOND);
	concert_queue_entry e;
	assert_ok(q_status(h, &e, concert, tok[1], 0, &p));
	assert_int_equal(e.state, CONCERT_QUEUE_WAITING);
	assert_int_equal(e.expires_at, t0 + idle);
	assert_ok(q_status(h, &e, concert, tok[1], 1, &p));
	assert_int_equal(e.state, CONCERT_QUEUE_WAITING);
	assert_int_equal(e.expires_at, t0 + 9 * H_SECOND + idle);

	h_set_time(h, t0 + idle + 1);
	assert_state(h, concert, tok[2], &p, CONCERT_QUEUE_EXPIRED, 0);
	assert_state(h, concert, tok[1], &p, CONCERT_QUEUE_WAITING, 1);
	assert_state(h, concert, late, &p, CONCERT_QUEUE_WAITING, 2);
	assert_state(h, concert, tok[0], &p, CONCERT_QUEUE_ACTIVE, 0);
	assert_rc(h->queue->leave(h->queue_ctx, concert, tok[2], h_now(h)), CONCERT_EEXPIRED);

	h_set_time(h, t0 + 5 * H_SECOND + idle + 1);
	assert_state(h, concert, late, &p, CONCERT_QUEUE_EXPIRED, 0);
	assert_state(h, concert, tok[1], &p, CONCERT_QUEUE_WAITING, 1);

	h_set_time(h, t0 + 9 * H_SECOND + idle + 1);
	assert_state(h, concert, tok[1], &p, CONCERT_QUEUE_EXPIRED, 0);
	/* Expired tokens are never admitted: the slot holder stays alone. */
	assert_ok(h->queue->complete(h->queue_ctx, concert, tok[0], h_now(h)));
	uint32_t admitted = 99;
	assert_ok(h->queue->admit(h->queue_ctx, &admitted, concert, &p, h_now(h)));
	assert_int_equal(admitted, 0);
	assert_state(h, concert, tok[1], &p, CONCERT_QUEUE_EXPIRED, 0);

	/* The expired user enters again as a new token and is admitted at once. */
	assert_ok(q_enter(h, &e, users[1], concert, &p));
	assert_int_equal(e.created, 1);
	assert_true(e.token_id != tok[1]);
	assert_int_equal(e.state, CONCERT_QUEUE_ACTIVE);

	/* A reopen may grant waiting tokens a fresh idle TTL (memory does, as
	 * nobody could heartbeat while it was down), but never revives a token
	 * already reported EXPIRED. */
	assert_int_equal(h_reopen(h), h->durable);
	assert_state(h, concert, tok[2], &p, CONCERT_QUEUE_EXPIRED, 0);
	assert_state(h, concert, late, &p, CONCERT_QUEUE_EXPIRED, 0);
	assert_state(h, concert, tok[1], &p, CONCERT_QUEUE_EXPIRED, 0);
	assert_state(h, concert, tok[0], &p, CONCERT_QUEUE_DONE, 0);
	assert_state(h, concert, e.token_id, &p, CONCERT_QUEUE_ACTIVE, 0);
}

static void test_active_expiry(void **state)
{
	harness *h = *state;
	const concert_time active_ttl = 60 * H_SECOND;
	concert_queue_policy p = policy(1, 0, H_HOUR, active_ttl);
	int64_t concert = h_unique_id();
	concert_time t0 = h_now(h);
	int64_t tok[3];
	char users[3][H_NAME_SIZE];
	enter_users(h, concert, &p, tok, users, 3);
	assert_int_equal(q_get(h, concert, tok[0], &p).expires_at, t0 + active_ttl);

	h_set_time(h, t0 + active_ttl - 1);
	assert_state(h, concert, tok[0], &p, CONCERT_QUEUE_ACTIVE, 0);
	assert_state(h, concert, tok[1], &p, CONCERT_QUEUE_WAITING, 1);

	/* Past active_until: expired, and the next in line is admitted. */
	h_set_time(h, t0 + active_ttl + 1);
	concert_queue_entry e = q_get(h, concert, tok[1], &p);
	assert_int_equal(e.state, CONCERT_QUEUE_ACTIVE);
	assert_int_equal(e.expires_at, h_now(h) + active_ttl);
	assert_state(h, concert, tok[0], &p, CONCERT_QUEUE_EXPIRED, 0);
	assert_state(h, concert, tok[2], &p, CONCERT_QUEUE_WAITING, 1);
	assert_rc(h->queue->complete(h->queue_ctx, concert, tok[0], h_now(h)), CONCERT_ESTATE);
	assert_rc(h->queue->leave(h->queue_ctx, concert, tok[0], h_now(h)), CONCERT_EEXPIRED);

	/* The expiry is found by admit too, without a status read. */
	h_set_time(h, e.expires_at + 1);
	uint32_t admitted = 0;
	assert_ok(h->queue->admit(h->queue_ctx, &admitted, concert, &p, h_now(h)));
	assert_int_equal(admitted, 1);
	assert_state(h, concert, tok[2], &p, CONCERT_QUEUE_ACTIVE, 0);
	assert_state(h, concert, tok[1], &p, CONCERT_QUEUE_EXPIRED, 0);
}

static void test_leave_complete_errors(void **state)
{
	harness *h = *state;
	concert_queue_policy p = policy(1, 0, H_HOUR, H_HOUR);
	int64_t concert = h_unique_id(), other = h_unique_id();
	int64_t tok[3];
	char users[3][H_NAME_SIZE];
	enter_users(h, concert, &p, tok, users, 3);
	const int64_t unknown = INT64_MAX - 11;
	concert_queue_entry e;

	assert_rc(q_status(h, &e, concert, unknown, 0, &p), CONCERT_ETOKEN);
	assert_rc(h->queue->leave(h->queue_ctx, concert, unknown, h_now(h)), CONCERT_ETOKEN);
	assert_rc(h->queue->complete(h->queue_ctx, concert, unknown, h_now(h)), CONCERT_ETOKEN);
	/* A real token presented for another concert is unknown there. */
	assert_rc(q_status(h, &e, other, tok[0], 0, &p), CONCERT_ETOKEN);
	assert_rc(h->queue->leave(h->queue_ctx, other, tok[1], h_now(h)), CONCERT_ETOKEN);
	assert_rc(h->queue->complete(h->queue_ctx, other, tok[0], h_now(h)), CONCERT_ETOKEN);
	assert_state(h, concert, tok[0], &p, CONCERT_QUEUE_ACTIVE, 0);
	assert_state(h, concert, tok[1], &p, CONCERT_QUEUE_WAITING, 1);

	/* complete needs ACTIVE. */
	assert_rc(h->queue->complete(h->queue_ctx, concert, tok[1], h_now(h)), CONCERT_ESTATE);
	assert_state(h, concert, tok[1], &p, CONCERT_QUEUE_WAITING, 1);
	assert_ok(h->queue->complete(h->queue_ctx, concert, tok[0], h_now(h)));
	assert_state(h, concert, tok[0], &p, CONCERT_QUEUE_DONE, 0);
	assert_rc(h->queue->complete(h->queue_ctx, concert, tok[0], h_now(h)), CONCERT_ESTATE);
	assert_rc(h->queue->leave(h->queue_ctx, concert, tok[0], h_now(h)), CONCERT_EEXPIRED);
	assert_state(h, concert, tok[0], &p, CONCERT_QUEUE_DONE, 0);

	/* Leaving while ACTIVE frees the slot. */
	assert_state(h, concert, tok[1], &p, CONCERT_QUEUE_ACTIVE, 0);
	assert_ok(h->queue->leave(h->queue_ctx, concert, tok[1], h_now(h)));
	assert_state(h, concert, tok[1], &p, CONCERT_QUEUE_EXPIRED, 0);
	assert_rc(h->queue->complete(h->queue_ctx, concert, tok[1], h_now(h)), CONCERT_ESTATE);
	assert_state(h, concert, tok[2], &p, CONCERT_QUEUE_ACTIVE, 0);
	assert_ok(h->queue->leave(h->queue_ctx, concert, tok[2], h_now(h)));
}

static void test_queue_sweep(void **state)
{
	harness *h = *state;
	if (!h->queue->sweep) {
		print_message("queue backend '%s' has no sweep\n", h->queue->scheme);
		return;
	}
	concert_queue_policy p = policy(1, 0, 10 * H_SECOND, H_HOUR);
	int64_t concert = h_unique_id();
	int64_t tok[4];
	char users[4][H_NAME_SIZE];
	enter_users(h, concert, &p, tok, users, 3);
	concert_time t0 = h_now(h);
	h_set_time(h, t0 + 8 * H_SECOND);
	enter_users(h, concert, &p, &tok[3], &users[3], 1);
	h_set_time(h, t0 + 10 * H_SECOND + 1);
	uint64_t swept = 0;
	assert_ok(h->queue->sweep(h->queue_ctx, h_now(h), &swept));
	assert_true(swept >= 2);
	/* Swept tokens are gone or read EXPIRED; live ones are untouched. */
	for (int i = 1; i < 3; i++) {
		concert_queue_entry e;
		concert_error_clear();
		int rc = q_status(h, &e, concert, tok[i], 0, &p);
		if (rc == 0)
			assert_int_equal(e.state, CONCERT_QUEUE_EXPIRED);
		else
			assert_int_equal(rc, CONCERT_ETOKEN);
	}
	assert_state(h, concert, tok[0], &p, CONCERT_QUEUE_ACTIVE, 0);
	assert_state(h, concert, tok[3], &p, CONCERT_QUEUE_WAITING, 1);
	concert_queue_entry e;
	assert_ok(q_enter(h, &e, users[1], concert, &p));
	assert_int_equal(e.created, 1);
	assert_int_equal(e.position, 2);
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_setup_queue, h_teardown)

int main(void)
{
	h_apply_filters();
	const struct CMUnitTest tests[] = {
		T(test_enter_idempotent),
		T(test_fifo_admission),
		T(test_position_after_leave),
		T(test_positions_follow_the_model),
		T(test_max_active),
		T(test_admit_per_second),
		T(test_idle_expiry),
		T(test_active_expiry),
		T(test_leave_complete_errors),
		T(test_queue_sweep),
	};
	return cmocka_run_group_tests_name("conformance.queue", tests, NULL, NULL);
}
