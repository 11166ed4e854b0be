/*
 * Fairness of the Redis queue under concurrency: 10,000 users enter one
 * concert from 8 threads sharing one backend context while each thread
 * also polls its tokens and leaves its oldest once ACTIVE (so admissions
 * run all along, interleaved with entries, behind a queue thousands long).
 *
 * Arrival order is Redis's execution order of the enter scripts, which no
 * client sees directly; it is derived from each enter's own reply: a token
 * WAITING at position p when admitted_total was a arrived (0-based) at
 * a + p - 1, one admitted by its own enter at a - 1. With no token leaving
 * before admission, every later observation of a WAITING token must give
 * the same a + p - 1: if any token that arrived later had been admitted
 * first, a would count it while p would not shrink, so the sum would grow.
 * That is "admission order == arrival order", checked at every poll; the
 * derived arrivals must also be exactly 0..9999, each once.
 *
 * max_active: every reply gives admitted_total a; the ACTIVE count at that
 * moment is a minus the leaves done by then, and leaves done <= leaves
 * started (counted before each leave, read after the reply), so
 * a - started > max_active proves a breach. A sampler thread also reads
 * ZCARD of the concert's active set straight from Redis, concurrently.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "integration/redis/redis_test.h"

enum { USERS = 10000, THREADS = 8, PER_THREAD = USERS / THREADS, MAX_ACTIVE = 50 };
/* Rounds of a thread, far above what progress needs. */
#define POLL_LIMIT 2000000
/* Entries per round: faster than the one leave per round. */
#define ENTER_BURST 4

typedef struct shared {
	const concert_queue_backend *q;
	void *ctx;
	int64_t concert_id;
	concert_queue_policy policy;
	_Atomic uint64_t leaves_started;
	_Atomic int arrival_seen[USERS];
	_Atomic uint64_t fifo_checks;
	_Atomic int workers_done;
	_Atomic int failed;
	char failure[256];                /* written by the first failing thread only */
} shared;

typedef struct worker {
	shared *s;
	int index;
	int64_t token[PER_THREAD];
	int64_t arrival[PER_THREAD];
} worker;

static void fail_shared(shared *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail_shared(shared *s, const char *fmt, ...)
{
	int expected = 0;
	if (!atomic_compare_exchange_strong(&s->failed, &expected, 1))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->failure, sizeof(s->failure), fmt, ap);
	va_end(ap);
}

/* The ACTIVE count implied by a reply cannot exceed max_active. */
static void check_cap(shared *s, const concert_queue_entry *e)
{
	uint64_t started = atomic_load(&s->leaves_started);
	if (e->admitted_total > started + MAX_ACTIVE)
		fail_shared(s, "admitted %llu with only %llu leaves started: more than %d ACTIVE",
			    (unsigned long long)e->admitted_total, (unsigned long long)started,
			    MAX_ACTIVE);
}

static int enter_one(shared *s, worker *w, int i)
{
	char user[CONCERT_USER_ID_MAX + 1];
	snprintf(user, sizeof(user), "fair-%s-%d-%d", rt_run_tag(), w->index, i);
	concert_queue_entry e;
	int rc = s->q->enter(s->ctx, &e, user, s->concert_id, &s->policy, rt_now());
	if (rc != 0) {
		fail_shared(s, "enter: %s (%s)", concert_error_name(rc), concert_error_last()->message);
		return -1;
	}
	check_cap(s, &e);
	int64_t arrival = -1;
	if (e.created != 1)
		fail_shared(s, "enter of a new user returned an old token");
	else if (e.state == CONCERT_QUEUE_WAITING)
		arrival = (int64_t)e.admitted_total + e.position - 1;
	else if (e.state == CONCERT_QUEUE_ACTIVE)
		arrival = (int64_t)e.admitted_total - 1;
	else
		fail_shared(s, "new token in state %s", concert_queue_state_name(e.state));
	if (arrival < 0 || arrival >= USERS) {
		fail_shared(s, "derived arrival %lld out of range", (long long)arrival);
		return -1;
	}
	if (atomic_exchange(&s->arrival_seen[arrival], 1))
		fail_shared(s, "two tokens derive arrival %lld", (long long)arrival);
	w->token[i] = e.token_id;
	w->arrival[i] = arrival;
	return 0;
}

/*
 * Polls token i. A WAITING token is checked against its arrival; the oldest
 * unfinished one (`leave` set) leaves once ACTIVE. 1 when it left.
 */
static int poll_token(shared *s, worker *w, int i, int leave)
{
	concert_queue_entry e;
	int rc = s->q->status(s->ctx, &e, s->concert_id, w->token[i], 0, &s->policy, rt_now());
	if (rc != 0) {
		fail_shared(s, "status: %s (%s)", concert_error_name(rc), concert_error_last()->message);
		return -1;
	}
	check_cap(s, &e);
	if (e.state == CONCERT_QUEUE_WAITING) {
		int64_t derived = (int64_t)e.admitted_total + e.position - 1;
		if (derived != w->arrival[i])
			fail_shared(s, "token that arrived %lld is at position %lld with %llu admitted: "
				    "admission out of arrival order", (long long)w->arrival[i],
				    (long long)e.position, (unsigned long long)e.admitted_total);
		atomic_fetch_add(&s->fifo_checks, 1);
		return 0;
	}
	if (e.state != CONCERT_QUEUE_ACTIVE) {
		fail_shared(s, "token became %s", concert_queue_state_name(e.state));
		return -1;
	}
	if (!leave)
		return 0;
	atomic_fetch_add(&s->leaves_started, 1);
	rc = s->q->leave(s->ctx, s->concert_id, w->token[i], rt_now());
	if (rc != 0) {
		fail_shared(s, "leave: %s (%s)", concert_error_name(rc), concert_error_last()->message);
		return -1;
	}
	return 1;
}

/*
 * Enters its users a few at a time, faster than they leave, so the queue
 * grows to thousands and the active set stays full; each round it polls
 * its oldest token (leaving once ACTIVE) and probes one younger one.
 */
static void *worker_main(void *arg)
{
	worker *w = arg;
	shared *s = w->s;
	int entered = 0, head = 0;
	for (long round = 0; head < PER_THREAD && !atomic_load(&s->failed); round++) {
		if (round > POLL_LIMIT) {
			fail_shared(s, "thread %d made no progress at token %d", w->index, head);
			break;
		}
		for (int burst = 0; burst < ENTER_BURST && entered < PER_THREAD; burst++)
			if (enter_one(s, w, entered++) < 0)
				goto out;
		int rc = poll_token(s, w, head, 1);
		if (rc < 0)
			break;
		head += rc;
		if (entered - head > 1 && poll_token(s, w, head + 1 + (int)(round % (entered - head - 1)),
						     0) < 0)
			break;
	}
out:
	atomic_fetch_add(&s->workers_done, 1);
	return NULL;
}

typedef struct sampler {
	shared *s;
	int port;
	long long samples;
	long long most_active;
	char error[128];
} sampler;

static void *sampler_main(void *arg)
{
	sampler *m = arg;
	redisContext *c = rt_redis(m->port);
	if (!c) {
		snprintf(m->error, sizeof(m->error), "sampler cannot connect");
		return NULL;
	}
	char key[96];
	snprintf(key, sizeof(key), "concert:{%lld}:active", (long long)m->s->concert_id);
	int last = 0;
	while (!last) {
		last = atomic_load(&m->s->workers_done) == THREADS;
		long long n = rt_redis_int(c, "ZCARD %s", key);
		if (n < 0) {
			snprintf(m->error, sizeof(m->error), "ZCARD failed");
			break;
		}
		m->samples++;
		if (n > m->most_active)
			m->most_active = n;
	}
	redisFree(c);
	return NULL;
}

static void test_fairness(void **state)
{
	(void)state;
	static shared s;
	static worker workers[THREADS];
	char uri[128];
	int port = rt_env_int("CONCERT_TEST_REDIS_PORT");
	rt_uri(uri, sizeof(uri), port, "?pool=16");
	memset(&s, 0, sizeof(s));
	s.q = concert_registry_queue(uri);
	assert_non_null(s.q);
	concert_backend_env env = rt_backend_env();
	assert_int_equal(s.q->open(&s.ctx, uri, &env), 0);
	s.policy = (concert_queue_policy){ MAX_ACTIVE, 0, 10 * 60 * 1000, 10 * 60 * 1000 };
	s.concert_id = rt_unique_id();

	sampler m = { &s, port, 0, 0, "" };
	pthread_t threads[THREADS], sampler_thread;
	assert_int_equal(pthread_create(&sampler_thread, NULL, sampler_main, &m), 0);
	for (int i = 0; i < THREADS; i++) {
		workers[i].s = &s;
		workers[i].index = i;
		assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	pthread_join(sampler_thread, NULL);

	if (atomic_load(&s.failed))
		fail_msg("%s", s.failure);
	for (int i = 0; i < USERS; i++)
		if (!atomic_load(&s.arrival_seen[i]))
			fail_msg("no token derived arrival %d", i);
	assert_int_equal(atomic_load(&s.leaves_started), USERS);
	print_message("%llu FIFO checks of waiting tokens; %lld samples of the active set, "
		      "at most %lld ACTIVE\n", (unsigned long long)atomic_load(&s.fifo_checks),
		      m.samples, m.most_active);
	if (m.error[0])
		fail_msg("%s", m.error);
	assert_true(m.samples > 0);
	assert_true(m.most_active <= MAX_ACTIVE);
	/* The load really queued and filled the active set. */
	assert_true(atomic_load(&s.fifo_checks) >= USERS / 2);
	assert_int_equal(m.most_active, MAX_ACTIVE);

	/* Everyone was admitted once; a newcomer is admitted at once, next in line. */
	concert_queue_entry e;
	assert_int_equal(s.q->enter(s.ctx, &e, "fair-last", s.concert_id, &s.policy, rt_now()), 0);
	assert_int_equal(e.state, CONCERT_QUEUE_ACTIVE);
	assert_int_equal(e.admitted_total, USERS + 1);
	s.q->close(s.ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fairness),
	};
	return cmocka_run_group_tests_name("redis.fairness", tests, NULL, NULL);
}
