/*
 * Concurrency conformance of the queue: users entering one concert from
 * many threads (twice each), a sampler counting ACTIVE tokens meanwhile,
 * then completers draining the queue while admission order is checked.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance/threads.h"

/* ---- the queue under concurrent entry and completion ---------------------- */

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
	for (int pass = 0; pass < 2; pass++) {
		for (int r = 1; r <= Q_USERS; r += 7) {
			concert_queue_entry e;
			assert_ok(q_status_of(s, &e, s->by_rank[r]));
			assert_int_equal(e.state, CONCERT_QUEUE_DONE);
		}
		/* A durable queue replays the interleaved journal to the same state. */
		if (!h_reopen(h))
			break;
	}
	pthread_barrier_destroy(&s->start);
}

int main(void)
{
	h_apply_filters();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_queue_race, h_setup_queue, h_teardown),
	};
	return cmocka_run_group_tests_name("conformance.concurrency_queue", tests, NULL, NULL);
}
