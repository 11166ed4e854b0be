/*
 * The memory queue backend through its vtable, with a driven clock.
 */
#define _POSIX_C_SOURCE 200809L   /* fork, kill */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/internal.h"
#include "storage/memory/queue.h"
#include "tmpdir.h"

#define T0 ((concert_time)1700000000000)

static const concert_queue_backend *const B = &concert_memory_queue_backend;

typedef struct fixture {
	concert_time now;
	concert_backend_env env;
	concert_queue_policy policy;
	void *q;
	char dir[64];
} fixture;

static concert_time fake_clock(void *ctx)
{
	return ((fixture *)ctx)->now;
}

static void quiet_log(void *ctx, int level, const char *message)
{
	(void)ctx;
	(void)level;
	(void)message;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->now = T0;
	f->env = (concert_backend_env){ CONCERT_BACKEND_ENV_VERSION, fake_clock, f, quiet_log, NULL,
		CONCERT_LOG_DEBUG };
	f->policy = (concert_queue_policy){ 2, 0, 60000, 120000 };
	assert_int_equal(B->open(&f->q, "memory:", &f->env), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	B->close(f->q);
	if (f->dir[0])
		assert_int_equal(tmpdir_remove(f->dir), 0);
	free(f);
	return 0;
}

/* Reopens the fixture durably in a fresh directory. */
static void go_durable(fixture *f)
{
	B->close(f->q);
	assert_int_equal(tmpdir_make(f->dir, sizeof(f->dir), "concert-queue"), 0);
	char uri[128];
	snprintf(uri, sizeof(uri), "memory:%s?fsync=off", f->dir);
	assert_int_equal(B->open(&f->q, uri, &f->env), 0);
}

static void reopen(fixture *f)
{
	char uri[128];
	snprintf(uri, sizeof(uri), "memory:%s", f->dir);
	B->close(f->q);
	f->q = NULL;
	assert_int_equal(B->open(&f->q, uri, &f->env), 0);
}

static concert_queue_entry enter(fixture *f, const char *user, int64_t concert_id)
{
	concert_queue_entry e;
	assert_int_equal(B->enter(f->q, &e, user, concert_id, &f->policy, f->now), 0);
	return e;
}

static concert_queue_entry status(fixture *f, int64_t concert_id, int64_t token_id, int touch)
{
	concert_queue_entry e;
	assert_int_equal(B->status(f->q, &e, concert_id, token_id, touch, &f->policy, f->now), 0);
	return e;
}

static uint32_t admit(fixture *f, int64_t concert_id)
{
	uint32_t n = 99;
	assert_int_equal(B->admit(f->q, &n, concert_id, &f->policy, f->now), 0);
	return n;
}

static void test_fifo_admission(void **state)
{
	fixture *f = *state;
	concert_queue_entry e[5];
	char user[16];
	for (int i = 0; i < 5; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		e[i] = enter(f, user, 1);
		assert_int_equal(e[i].created, 1);
		assert_int_equal(e[i].token_id, i + 1);
		assert_string_equal(e[i].user_id, user);
		assert_int_equal(e[i].issued_at, T0);
	}
	assert_int_equal(e[0].state, CONCERT_QUEUE_ACTIVE);
	assert_int_equal(e[0].expires_at, T0 + f->policy.active_ttl);
	assert_int_equal(e[1].state, CONCERT_QUEUE_ACTIVE);
	for (int i = 2; i < 5; i++) {
		assert_int_equal(e[i].state, CONCERT_QUEUE_WAITING);
		assert_int_equal(e[i].position, i - 1);
		assert_int_equal(e[i].expires_at, T0 + f->policy.wait_idle_ttl);
	}
	assert_int_equal(status(f, 1, e[4].token_id, 0).admitted_total, 2);

	f->now += 10;
	assert_int_equal(B->complete(f->q, 1, e[1].token_id, f->now), 0);
	concert_queue_entry s = status(f, 1, e[4].token_id, 0);
	assert_int_equal(s.state, CONCERT_QUEUE_WAITING);
	assert_int_equal(s.position, 2);
	assert_int_equal(s.admitted_total, 3);
	s = status(f, 1, e[2].token_id, 0);
	assert_int_equal(s.state, CONCERT_QUEUE_ACTIVE);
	assert_int_equal(s.expires_at, f->now + f->policy.active_ttl);
	assert_int_equal(status(f, 1, e[3].token_id, 0).position, 1);
}

static void test_positions_after_leaves(void **state)
{
	fixture *f = *state;
	f->policy.max_active = 0;
	int64_t ids[10];
	char user[16];
	for (int i = 0; i < 10; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		ids[i] = enter(f, user, 7).token_id;
	}
	assert_int_equal(B->leave(f->q, 7, ids[2], f->now), 0);
	assert_int_equal(B->leave(f->q, 7, ids[6], f->now), 0);
	assert_int_equal(B->leave(f->q, 7, ids[0], f->now), 0);
	static const int64_t expect[10] = { 0, 1, 0, 2, 3, 4, 0, 5, 6, 7 };
	for (int i = 0; i < 10; i++) {
		concert_queue_entry s = status(f, 7, ids[i], 0);
		assert_int_equal(s.position, expect[i]);
		assert_int_equal(s.state, expect[i] ? CONCERT_QUEUE_WAITING : CONCERT_QUEUE_EXPIRED);
	}
	assert_int_equal(B->leave(f->q, 7, ids[2], f->now), CONCERT_EEXPIRED);
	/* A newcomer goes to the back. */
	assert_int_equal(enter(f, "late", 7).position, 8);
}

static void test_enter_is_idempotent(void **state)
{
	fixture *f = *state;
	f->policy.max_active = 1;
	concert_queue_entry a = enter(f, "alice", 1);
	concert_queue_entry b = enter(f, "bob", 1);
	f->now += 1000;
	concert_queue_entry a2 = enter(f, "alice", 1);
	concert_queue_entry b2 = enter(f, "bob", 1);
	assert_int_equal(a2.created, 0);
	assert_int_equal(a2.token_id, a.token_id);
	assert_int_equal(a2.state, CONCERT_QUEUE_ACTIVE);
	assert_int_equal(b2.created, 0);
	assert_int_equal(b2.token_id, b.token_id);
	assert_int_equal(b2.position, 1);
	/* Entering again counts as activity. */
	assert_int_equal(b2.expires_at, f->now + f->policy.wait_idle_ttl);
	/* Another concert is another queue. */
	concert_queue_entry other = enter(f, "bob", 2);
	assert_int_equal(other.created, 1);
	assert_int_not_equal(other.token_id, b.token_id);
	/* After leaving, entering makes a new token at the back. */
	assert_int_equal(B->leave(f->q, 1, b.token_id, f->now), 0);
	concert_queue_entry b3 = enter(f, "bob", 1);
	assert_int_equal(b3.created, 1);
	assert_true(b3.token_id > other.token_id);
}

static void test_max_active_respected(void **state)
{
	fixture *f = *state;
	f->policy.max_active = 3;
	int64_t ids[10];
	char user[16];
	for (int i = 0; i < 10; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		ids[i] = enter(f, user, 1).token_id;
	}
	assert_int_equal(admit(f, 1), 0);
	int active = 0;
	for (int i = 0; i < 10; i++)
		active += status(f, 1, ids[i], 1).state == CONCERT_QUEUE_ACTIVE;
	assert_int_equal(active, 3);
	f->policy.max_active = 5;
	assert_int_equal(admit(f, 1), 2);
	assert_int_equal(status(f, 1, ids[4], 0).state, CONCERT_QUEUE_ACTIVE);
	assert_int_equal(status(f, 1, ids[5], 0).position, 1);
	/* Unknown concert: nobody to admit, not an error. */
	assert_int_equal(admit(f, 99), 0);
}

static void test_admit_per_second(void **state)
{
	fixture *f = *state;
	f->policy = (concert_queue_policy){ 100, 2, 3600000, 3600000 };
	int64_t ids[10];
	char user[16];
	for (int i = 0; i < 10; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		ids[i] = enter(f, user, 1).token_id;
	}
	/* The bucket starts with one second's worth. */
	assert_int_equal(status(f, 1, ids[1], 0).state, CONCERT_QUEUE_ACTIVE);
	assert_int_equal(status(f, 1, ids[2], 0).position, 1);
	f->now += 499;
	assert_int_equal(admit(f, 1), 0);
	f->now += 1;
	assert_int_equal(admit(f, 1), 1);
	f->now += 500;
	assert_int_equal(admit(f, 1), 1);
	/* A long pause refills at most one second's worth. */
	f->now += 60000;
	assert_int_equal(admit(f, 1), 2);
	assert_int_equal(admit(f, 1), 0);
	assert_int_equal(status(f, 1, ids[5], 0).state, CONCERT_QUEUE_ACTIVE);
	assert_int_equal(status(f, 1, ids[6], 0).position, 1);
	assert_int_equal(status(f, 1, ids[6], 0).admitted_total, 6);
}

/* Refilling after a long pause must not overflow (UBSan checks). */
static void test_admit_rate_after_clock_jump(void **state)
{
	fixture *f = *state;
	f->policy = (concert_queue_policy){ 1, UINT32_MAX, INT64_MAX / 4, INT64_MAX / 4 };
	int64_t a = enter(f, "a", 1).token_id;
	int64_t b = enter(f, "b", 1).token_id;
	assert_int_equal(B->complete(f->q, 1, a, f->now), 0);
	f->now += (concert_time)1 << 50;
	assert_int_equal(status(f, 1, b, 0).state, CONCERT_QUEUE_ACTIVE);
}

static void test_idle_expiry_and_touch(void **state)
{
	fixture *f = *state;
	f->policy = (concert_queue_policy){ 0, 0, 1000, 5000 };
	int64_t a = enter(f, "a", 1).token_id;
	int64_t b = enter(f, "b", 1).token_id;
	int64_t c = enter(f, "c", 1).token_id;
	f->now += 600;
	assert_int_equal(status(f, 1, a, 1).expires_at, f->now + 1000);
	assert_int_equal(status(f, 1, c, 0).expires_at, T0 + 1000);   /* no touch */
	f->now = T0 + 1000;
	concert_queue_entry s = status(f, 1, a, 0);
	assert_int_equal(s.state, CONCERT_QUEUE_WAITING);
	assert_int_equal(s.position, 1);
	assert_int_equal(status(f, 1, b, 0).state, CONCERT_QUEUE_EXPIRED);
	assert_int_equal(status(f, 1, c, 0).position, 0);
	f->now = T0 + 1600;
	assert_int_equal(status(f, 1, a, 0).state, CONCERT_QUEUE_EXPIRED);
	assert_int_equal(B->leave(f->q, 1, a, f->now), CONCERT_EEXPIRED);
	concert_queue_entry again = enter(f, "a", 1);
	assert_int_equal(again.created, 1);
	assert_int_equal(again.position, 1);
}

static void test_active_expiry_admits_next(void **state)
{
	fixture *f = *state;
	f->policy = (concert_queue_policy){ 1, 0, 60000, 1000 };
	int64_t a = enter(f, "a", 1).token_id;
	int64_t b = enter(f, "b", 1).token_id;
	f->now += 999;
	assert_int_equal(status(f, 1, b, 1).state, CONCERT_QUEUE_WAITING);
	f->now += 1;
	concert_queue_entry s = status(f, 1, b, 0);
	assert_int_equal(s.state, CONCERT_QUEUE_ACTIVE);
	assert_int_equal(s.expires_at, f->now + 1000);
	assert_int_equal(status(f, 1, a, 0).state, CONCERT_QUEUE_EXPIRED);
	assert_int_equal(B->complete(f->q, 1, a, f->now), CONCERT_ESTATE);
}

static void test_complete_and_leave_errors(void **state)
{
	fixture *f = *state;
	f->policy.max_active = 1;
	int64_t a = enter(f, "a", 1).token_id;
	int64_t b = enter(f, "b", 1).token_id;
	assert_int_equal(B->complete(f->q, 1, b, f->now), CONCERT_ESTATE);
	assert_int_equal(concert_error_last()->code, CONCERT_ESTATE);
	assert_int_equal(B->complete(f->q, 1, a, f->now), 0);
	assert_int_equal(status(f, 1, a, 0).state, CONCERT_QUEUE_DONE);
	assert_int_equal(B->complete(f->q, 1, a, f->now), CONCERT_ESTATE);
	assert_int_equal(B->leave(f->q, 1, a, f->now), CONCERT_EEXPIRED);
	assert_int_equal(B->leave(f->q, 1, 12345, f->now), CONCERT_ETOKEN);
	assert_int_equal(B->complete(f->q, 1, 12345, f->now), CONCERT_ETOKEN);
	/* b was admitted when a's slot freed. */
	assert_int_equal(B->leave(f->q, 1, b, f->now), 0);
	assert_int_equal(status(f, 1, b, 0).state, CONCERT_QUEUE_EXPIRED);
}

static void test_foreign_concert(void **state)
{
	fixture *f = *state;
	int64_t a = enter(f, "a", 1).token_id;
	enter(f, "z", 2);
	concert_queue_entry e;
	assert_int_equal(B->status(f->q, &e, 2, a, 0, &f->policy, f->now), CONCERT_ETOKEN);
	assert_int_equal(B->status(f->q, &e, 3, a, 0, &f->policy, f->now), CONCERT_ETOKEN);
	assert_int_equal(B->leave(f->q, 2, a, f->now), CONCERT_ETOKEN);
	assert_int_equal(B->complete(f->q, 3, a, f->now), CONCERT_ETOKEN);
	assert_int_equal(status(f, 1, a, 0).state, CONCERT_QUEUE_ACTIVE);
}

static void test_bad_arguments(void **state)
{
	fixture *f = *state;
	concert_queue_entry e;
	char long_user[CONCERT_USER_ID_MAX + 2];
	memset(long_user, 'x', sizeof(long_user) - 1);
	long_user[sizeof(long_user) - 1] = '\0';
	assert_int_equal(B->enter(f->q, &e, "", 1, &f->policy, f->now), CONCERT_EINVAL);
	assert_int_equal(B->enter(f->q, &e, NULL, 1, &f->policy, f->now), CONCERT_EINVAL);
	assert_int_equal(B->enter(f->q, &e, long_user, 1, &f->policy, f->now), CONCERT_EINVAL);
	long_user[CONCERT_USER_ID_MAX] = '\0';
	assert_int_equal(B->enter(f->q, &e, long_user, 1, &f->policy, f->now), 0);
	assert_string_equal(e.user_id, long_user);
	void *q = NULL;
	assert_int_equal(B->open(&q, "memory:relative", &f->env), CONCERT_EINVAL);
	assert_null(q);
	assert_int_equal(B->health(f->q), 0);
}

static void test_ended_tokens_forgotten(void **state)
{
	fixture *f = *state;
	f->policy = (concert_queue_policy){ 1, 0, 1000, 2000 };
	int64_t a = enter(f, "a", 1).token_id;
	int64_t b = enter(f, "b", 1).token_id;
	assert_int_equal(B->complete(f->q, 1, a, f->now), 0);
	assert_int_equal(B->leave(f->q, 1, b, f->now), 0);
	f->now += 2999;
	assert_int_equal(status(f, 1, a, 0).state, CONCERT_QUEUE_DONE);
	f->now += 1;
	uint64_t swept = 0;
	assert_int_equal(B->sweep(f->q, f->now, &swept), 0);
	assert_int_equal(swept, 2);
	concert_queue_entry e;
	assert_int_equal(B->status(f->q, &e, 1, a, 0, &f->policy, f->now), CONCERT_ETOKEN);
	assert_int_equal(B->status(f->q, &e, 1, b, 0, &f->policy, f->now), CONCERT_ETOKEN);
}

/* Enough tokens to renumber and grow the rank several times. */
static void test_many_tokens_keep_order(void **state)
{
	fixture *f = *state;
	enum { N = 5000 };
	f->policy = (concert_queue_policy){ 0, 0, 3600000, 3600000 };
	int64_t *ids = calloc(N, sizeof(*ids));
	assert_non_null(ids);
	char user[16];
	for (int i = 0; i < N; i++) {
		snprintf(user, sizeof(user), "user%d", i);
		ids[i] = enter(f, user, 1).token_id;
		if (i % 3 == 1)
			assert_int_equal(B->leave(f->q, 1, ids[i], f->now), 0);
	}
	int64_t position = 0;
	for (int i = 0; i < N; i++)
		if (i % 3 != 1)
			assert_int_equal(status(f, 1, ids[i], 0).position, ++position);
	/* Admission follows entry order across the renumbered slots. */
	f->policy.max_active = 1000;
	assert_int_equal(admit(f, 1), 1000);
	int admitted = 0;
	for (int i = 0; i < N; i++) {
		if (i % 3 == 1)
			continue;
		concert_queue_entry s = status(f, 1, ids[i], 0);
		assert_int_equal(s.state, admitted < 1000 ? CONCERT_QUEUE_ACTIVE : CONCERT_QUEUE_WAITING);
		if (admitted >= 1000)
			assert_int_equal(s.position, admitted - 999);
		admitted++;
	}
	free(ids);
}

/*
 * Two concerts filling at once draw their token ids from one counter, so
 * each concert's ids come with gaps; at this size each concert's maps pass
 * 2 MiB (mapped apart, offered huge pages) and shrink back below it once
 * the tokens leave and are forgotten. Every token stays found, in order.
 */
static void test_two_concerts_fill_at_once(void **state)
{
	fixture *f = *state;
	enum { N = 50000 };
	f->policy = (concert_queue_policy){ 0, 0, 3600000, 3600000 };
	int64_t(*ids)[2] = calloc(N, sizeof(*ids));
	assert_non_null(ids);
	char user[16];
	for (int i = 0; i < N; i++)
		for (int c = 0; c < 2; c++) {
			snprintf(user, sizeof(user), "u%d", i);
			ids[i][c] = enter(f, user, c + 1).token_id;
		}
	for (int i = 0; i < N; i++)
		for (int c = 0; c < 2; c++) {
			concert_queue_entry s = status(f, c + 1, ids[i][c], 0);
			assert_int_equal(s.position, i + 1);
			assert_int_equal(s.token_id, ids[i][c]);
		}
	for (int i = 0; i < N; i++)
		for (int c = 0; c < 2; c++)
			assert_int_equal(B->leave(f->q, c + 1, ids[i][c], f->now), 0);
	/* Past retention every ended token is forgotten. */
	f->now += 2 * (f->policy.wait_idle_ttl + f->policy.active_ttl);
	uint64_t swept = 0, total = 0;
	do {
		assert_int_equal(B->sweep(f->q, f->now, &swept), 0);
		total += swept;
	} while (swept);
	assert_int_equal(total, 2 * N);
	concert_queue_entry e;
	assert_int_equal(B->status(f->q, &e, 1, ids[0][0], 0, &f->policy, f->now), CONCERT_ETOKEN);
	assert_int_equal(B->status(f->q, &e, 2, ids[N - 1][1], 0, &f->policy, f->now), CONCERT_ETOKEN);
	/* The maps still work after shrinking. */
	assert_int_equal(enter(f, "again", 1).position, 1);
	free(ids);
}

/*
 * A concert's tokens are numbered by 32-bit refs, so its slab has a bounded
 * number of chunks (lowered here to two). Past it, entering is refused with
 * CONCERT_ELIMIT and every remembered token stays as it was; forgotten
 * tokens make room again.
 */
static void test_token_limit(void **state)
{
	fixture *f = *state;
	enum { MAX = 100000 };
	f->policy = (concert_queue_policy){ 0, 0, 1000, 1000 };
	int64_t *ids = calloc(MAX, sizeof(*ids));
	assert_non_null(ids);
	char user[16];
	ids[0] = enter(f, "u0", 1).token_id;
	memq_concert *c = memq_concert_find(f->q, 1);
	assert_non_null(c);
	c->slab.max_chunks = 2;
	concert_queue_entry e;
	int n = 1, rc;
	for (;; n++) {
		assert_true(n < MAX);
		snprintf(user, sizeof(user), "u%d", n);
		rc = B->enter(f->q, &e, user, 1, &f->policy, f->now);
		if (rc != 0)
			break;
		ids[n] = e.token_id;
	}
	assert_int_equal(rc, CONCERT_ELIMIT);
	assert_int_equal(concert_error_last()->code, CONCERT_ELIMIT);
	assert_true(n >= 2);
	/* A user already in the queue still gets their token back. */
	concert_queue_entry again = enter(f, "u1", 1);
	assert_int_equal(again.created, 0);
	assert_int_equal(again.token_id, ids[1]);
	for (int i = 0; i < n; i++)
		assert_int_equal(status(f, 1, ids[i], 0).position, i + 1);

	/* Forget the first half (heartbeats keep the rest waiting): the same
	 * number of newcomers fit again, in freed records, and no more. */
	int half = n / 2;
	for (int i = 0; i < half; i++)
		assert_int_equal(B->leave(f->q, 1, ids[i], f->now), 0);
	for (int step = 0; step < 3; step++) {
		f->now += 900;
		for (int i = half; i < n; i++)
			assert_int_equal(status(f, 1, ids[i], 1).state, CONCERT_QUEUE_WAITING);
	}
	for (int i = 0; i < half; i++) {
		assert_int_equal(B->status(f->q, &e, 1, ids[i], 0, &f->policy, f->now), CONCERT_ETOKEN);
		snprintf(user, sizeof(user), "v%d", i);
		ids[i] = enter(f, user, 1).token_id;
	}
	assert_int_equal(B->enter(f->q, &e, "one-too-many", 1, &f->policy, f->now), CONCERT_ELIMIT);
	for (int i = 0; i < n; i++) {
		concert_queue_entry s = status(f, 1, ids[i], 0);
		assert_int_equal(s.position, i < half ? n - half + i + 1 : i - half + 1);
		snprintf(user, sizeof(user), i < half ? "v%d" : "u%d", i);
		assert_string_equal(s.user_id, user);
	}
	free(ids);
}

static void test_durable_reopen(void **state)
{
	fixture *f = *state;
	go_durable(f);
	int64_t ids[6];
	char user[16];
	for (int i = 0; i < 6; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		ids[i] = enter(f, user, 1).token_id;
	}
	enter(f, "other", 2);
	/* ACTIVE: u0 (then DONE), u1; u2 ACTIVE after u0 is done; waiting u3, u5. */
	assert_int_equal(B->complete(f->q, 1, ids[0], f->now), 0);
	assert_int_equal(B->leave(f->q, 1, ids[4], f->now), 0);
	assert_int_equal(status(f, 1, ids[2], 0).state, CONCERT_QUEUE_ACTIVE);

	/* Reopened after the recorded idle deadlines: nobody expires for it. */
	f->now += f->policy.wait_idle_ttl + 5000;
	reopen(f);
	assert_int_equal(status(f, 1, ids[0], 0).state, CONCERT_QUEUE_DONE);
	concert_queue_entry s = status(f, 1, ids[1], 0);
	assert_int_equal(s.state, CONCERT_QUEUE_ACTIVE);
	assert_int_equal(s.expires_at, T0 + f->policy.active_ttl);
	assert_string_equal(s.user_id, "u1");
	assert_int_equal(s.admitted_total, 3);
	s = status(f, 1, ids[3], 0);
	assert_int_equal(s.state, CONCERT_QUEUE_WAITING);
	assert_int_equal(s.position, 1);
	assert_int_equal(s.expires_at, f->now + f->policy.wait_idle_ttl);
	assert_int_equal(status(f, 1, ids[4], 0).state, CONCERT_QUEUE_EXPIRED);
	assert_int_equal(status(f, 1, ids[5], 0).position, 2);
	assert_int_equal(enter(f, "u3", 1).token_id, ids[3]);
	/* Ids are never reused. */
	assert_int_equal(enter(f, "new", 1).token_id, ids[5] + 2);
}

static void test_durable_expiry_survives(void **state)
{
	fixture *f = *state;
	f->policy = (concert_queue_policy){ 1, 0, 1000, 5000 };
	go_durable(f);
	int64_t a = enter(f, "a", 1).token_id;
	int64_t b = enter(f, "b", 1).token_id;
	int64_t c = enter(f, "c", 1).token_id;
	f->now += 500;
	status(f, 1, c, 1);
	f->now += 600;
	/* b idled out; the hint reaches the disk at close. */
	assert_int_equal(status(f, 1, b, 0).state, CONCERT_QUEUE_EXPIRED);
	reopen(f);
	assert_int_equal(status(f, 1, a, 0).state, CONCERT_QUEUE_ACTIVE);
	assert_int_equal(status(f, 1, b, 0).state, CONCERT_QUEUE_EXPIRED);
	assert_int_equal(status(f, 1, c, 0).position, 1);
}

static void test_durable_compaction(void **state)
{
	fixture *f = *state;
	go_durable(f);
	int64_t ids[5];
	char user[16];
	for (int i = 0; i < 5; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		ids[i] = enter(f, user, 1).token_id;
	}
	assert_int_equal(B->complete(f->q, 1, ids[0], f->now), 0);
	assert_int_equal(B->leave(f->q, 1, ids[3], f->now), 0);
	f->now += 100;
	assert_int_equal(status(f, 1, ids[4], 1).position, 1);
	assert_int_equal(memory_queue_compact(f->q), 0);
	/* Records after the snapshot replay on top of it. */
	int64_t late = enter(f, "late", 1).token_id;
	reopen(f);
	concert_queue_entry e;
	/* Ended tokens keep their answer through a compaction (until retention). */
	assert_int_equal(status(f, 1, ids[0], 0).state, CONCERT_QUEUE_DONE);
	assert_int_equal(status(f, 1, ids[3], 0).state, CONCERT_QUEUE_EXPIRED);
	assert_int_equal(status(f, 1, ids[1], 0).state, CONCERT_QUEUE_ACTIVE);
	assert_int_equal(status(f, 1, ids[2], 0).state, CONCERT_QUEUE_ACTIVE);
	e = status(f, 1, ids[4], 0);
	assert_int_equal(e.position, 1);
	assert_int_equal(e.expires_at, T0 + 100 + f->policy.wait_idle_ttl);
	assert_int_equal(e.admitted_total, 3);
	assert_int_equal(status(f, 1, late, 0).position, 2);
	assert_int_equal(enter(f, "newer", 1).token_id, late + 1);
	/* A second compaction over a replayed state, then again. */
	assert_int_equal(memory_queue_compact(f->q), 0);
	reopen(f);
	assert_int_equal(status(f, 1, late, 0).position, 2);
	assert_int_equal(status(f, 1, late + 1, 0).position, 3);
	assert_int_equal(status(f, 1, ids[0], 0).state, CONCERT_QUEUE_DONE);
	assert_int_equal(B->status(f->q, &e, 1, ids[0], 0, &f->policy, f->now), 0);
}

/* What a call acknowledged survives a kill -9 (no close, no flush). */
static void test_durable_survives_kill(void **state)
{
	fixture *f = *state;
	go_durable(f);
	B->close(f->q);
	f->q = NULL;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char uri[128], user[16];
		concert_queue_entry e;
		snprintf(uri, sizeof(uri), "memory:%s", f->dir);
		int ok = B->open(&f->q, uri, &f->env) == 0;
		for (int i = 0; ok && i < 10; i++) {
			snprintf(user, sizeof(user), "u%d", i);
			ok = B->enter(f->q, &e, user, 1, &f->policy, f->now) == 0;
		}
		ok = ok && B->complete(f->q, 1, 1, f->now) == 0 &&
		     B->status(f->q, &e, 1, 6, 0, &f->policy, f->now) == 0 &&
		     B->leave(f->q, 1, 8, f->now) == 0;
		if (!ok)
			_exit(1);
		kill(getpid(), SIGKILL);
	}
	int wstatus;
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_true(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL);
	reopen(f);
	enum { W = CONCERT_QUEUE_WAITING };
	static const int states[10] = { CONCERT_QUEUE_DONE, CONCERT_QUEUE_ACTIVE, CONCERT_QUEUE_ACTIVE,
		W, W, W, W, CONCERT_QUEUE_EXPIRED, W, W };
	int64_t position = 0;
	for (int i = 0; i < 10; i++) {
		concert_queue_entry e = status(f, 1, i + 1, 0);
		assert_int_equal(e.state, states[i]);
		if (e.state == CONCERT_QUEUE_WAITING)
			assert_int_equal(e.position, ++position);
	}
	assert_int_equal(enter(f, "new", 1).token_id, 11);
}

static void test_second_open_refused(void **state)
{
	fixture *f = *state;
	go_durable(f);
	char uri[128];
	snprintf(uri, sizeof(uri), "memory:%s", f->dir);
	void *q = NULL;
	assert_int_equal(B->open(&q, uri, &f->env), CONCERT_EUNAVAILABLE);
	assert_null(q);
}

/* Several threads on two concerts; run under TSan for races. */
typedef struct worker {
	fixture *f;
	int index;
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	fixture *f = w->f;
	char user[32];
	for (int i = 0; i < 2000; i++) {
		int64_t concert_id = 1 + (i % 2);
		snprintf(user, sizeof(user), "w%d-%d", w->index, i % 50);
		concert_queue_entry e;
		int rc = B->enter(f->q, &e, user, concert_id, &f->policy, T0 + i);
		if (rc != 0)
			return "enter failed";
		if (e.state == CONCERT_QUEUE_ACTIVE && i % 3 == 0)
			rc = B->complete(f->q, concert_id, e.token_id, T0 + i);
		else if (i % 7 == 0)
			rc = B->leave(f->q, concert_id, e.token_id, T0 + i);
		else
			rc = B->status(f->q, &e, concert_id, e.token_id, 1, &f->policy, T0 + i);
		if (rc != 0)
			return "call failed";
	}
	return NULL;
}

static void test_threads(void **state)
{
	fixture *f = *state;
	f->policy = (concert_queue_policy){ 5, 0, 60000, 60000 };
	pthread_t threads[4];
	worker workers[4];
	for (int i = 0; i < 4; i++) {
		workers[i] = (worker){ f, i };
		assert_int_equal(pthread_create(&threads[i], NULL, work, &workers[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *result;
		assert_int_equal(pthread_join(threads[i], &result), 0);
		assert_null(result);
	}
	/* No concert ever has more than max_active ACTIVE tokens. */
	for (int64_t concert_id = 1; concert_id <= 2; concert_id++) {
		int active = 0;
		char user[32];
		for (int w = 0; w < 4; w++)
			for (int u = 0; u < 50; u++) {
				snprintf(user, sizeof(user), "w%d-%d", w, u);
				concert_queue_entry e;
				assert_int_equal(B->enter(f->q, &e, user, concert_id, &f->policy, T0 + 2000), 0);
				active += e.state == CONCERT_QUEUE_ACTIVE;
			}
		assert_true(active <= 5);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fifo_admission, setup, teardown),
		cmocka_unit_test_setup_teardown(test_positions_after_leaves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enter_is_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_active_respected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_admit_per_second, setup, teardown),
		cmocka_unit_test_setup_teardown(test_admit_rate_after_clock_jump, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_expiry_and_touch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_active_expiry_admits_next, setup, teardown),
		cmocka_unit_test_setup_teardown(test_complete_and_leave_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_concert, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ended_tokens_forgotten, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_tokens_keep_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_concerts_fill_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_durable_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_durable_expiry_survives, setup, teardown),
		cmocka_unit_test_setup_teardown(test_durable_compaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_durable_survives_kill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_open_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
