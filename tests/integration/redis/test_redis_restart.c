/*
 * The engine across Redis failures, on a spare redis-server this test
 * starts, kills and restarts itself:
 *
 *  - restart without persistence, and with AOF (appendfsync always), while
 *    4 threads poll 24 users' tokens (heartbeat) through one engine: while
 *    the server is down every call answers CONCERT_EUNAVAILABLE (nothing
 *    else, no crash, no hang); once it is back every call succeeds again.
 *    With AOF every token keeps its state and place. Without it the queue
 *    is gone: old tokens still verify (signature and clock only) but the
 *    engine refuses them (CONCERT_ETOKEN), users re-enter at the back, and
 *    admission starts over. Either way never more than max_active are
 *    ACTIVE (a sampler reads the active set from Redis all along, and the
 *    users' own views are counted after);
 *  - a server that stops answering (SIGSTOP): the call fails with
 *    CONCERT_EUNAVAILABLE after the command timeout, then works again; so
 *    do 4 calls pipelined on one shared connection, none left hanging;
 *  - a server that forgot the function library (FUNCTION FLUSH): reloaded
 *    transparently.
 *
 * A poll's result counts for a phase only if the phase was the same before
 * and after the call, so calls racing a transition are not judged.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/redis/redis_test.h"
#include "storage/redis/redis.h"

enum { POLLERS = 4, USERS = 24, MAX_ACTIVE = 8 };
enum { UP, CRASHING, DOWN, RESTARTING, BACK, STOPPING, PHASES };
/* Bounded waits for a condition the pollers report. */
#define WAIT_MS 30000

static const unsigned char secret[] = "restart-test-secret";

typedef struct user_slot {
	char user[CONCERT_USER_ID_MAX + 1];
	char token[CONCERT_TOKEN_MAX + 1];       /* current; its poller's own once polling */
	char old_token[CONCERT_TOKEN_MAX + 1];   /* the one from before the crash */
	int32_t state_before;
	int64_t position_before;
	_Atomic int ok_back;                     /* a success after the restart */
	int reentered;
} user_slot;

typedef struct counters {
	_Atomic uint64_t ok, unavailable, etoken, other;
	_Atomic uint64_t unavailable_after_ok;   /* a failure after this phase's first success */
} counters;

typedef struct restart_test {
	concert_engine *engine;
	int64_t concert_id;
	int aof;
	int port;
	_Atomic int phase;
	user_slot users[USERS];
	counters by_phase[POLLERS][PHASES];
	_Atomic int other_seen;
	char other_error[256];           /* first unexpected error, from one thread only */
	_Atomic int message_seen;
	char down_message[256];          /* first EUNAVAILABLE message */
	_Atomic long long most_active;   /* sampler */
	_Atomic long long samples;
} restart_test;

typedef struct poller {
	restart_test *t;
	int index;
} poller;

static void note_other(restart_test *t, int phase, int rc)
{
	int expected = 0;
	if (atomic_compare_exchange_strong(&t->other_seen, &expected, 1))
		snprintf(t->other_error, sizeof(t->other_error), "phase %d: %s (%s)", phase,
			 concert_error_name(rc), concert_error_last()->message);
}

static void poll_user(restart_test *t, int p, user_slot *u)
{
	int before = atomic_load(&t->phase);
	concert_queue_status *st = NULL;
	int rc = concert_queue_heartbeat(t->engine, &st, u->token);
	if (rc == CONCERT_ETOKEN && before == BACK && !t->aof && !u->reentered) {
		/* The queue was lost: the user comes back, at the back. */
		concert_free(st);
		st = NULL;
		rc = concert_queue_enter(t->engine, &st, u->user, t->concert_id);
		if (rc == 0) {
			concert_sys_strlcpy(u->token, st->token, sizeof(u->token));
			u->reentered = 1;
		} else {
			note_other(t, before, rc);
		}
		concert_free(st);
		return;
	}
	if (rc == CONCERT_EUNAVAILABLE) {
		int expected = 0;
		if (atomic_compare_exchange_strong(&t->message_seen, &expected, 1))
			concert_sys_strlcpy(t->down_message, concert_error_last()->message,
					    sizeof(t->down_message));
	}
	if (rc == 0 && st->state == CONCERT_QUEUE_ACTIVE)
		concert_sys_strlcpy(u->token, st->token, sizeof(u->token));
	concert_free(st);
	if (atomic_load(&t->phase) != before)
		return;
	counters *c = &t->by_phase[p][before];
	if (rc == 0) {
		atomic_fetch_add(&c->ok, 1);
		if (before == BACK)
			atomic_store(&u->ok_back, 1);
	} else if (rc == CONCERT_EUNAVAILABLE) {
		atomic_fetch_add(&c->unavailable, 1);
		if (atomic_load(&c->ok))
			atomic_fetch_add(&c->unavailable_after_ok, 1);
	} else if (rc == CONCERT_ETOKEN) {
		atomic_fetch_add(&c->etoken, 1);
	} else {
		atomic_fetch_add(&c->other, 1);
		note_other(t, before, rc);
	}
}

static void *poller_main(void *arg)
{
	poller *me = arg;
	restart_test *t = me->t;
	const int per = USERS / POLLERS;
	while (atomic_load(&t->phase) != STOPPING) {
		for (int i = 0; i < per; i++)
			poll_user(t, me->index, &t->users[me->index * per + i]);
		rt_pause_ms(2);
	}
	return NULL;
}

/* Reads the active set's size from Redis all along, reconnecting as needed. */
static void *sampler_main(void *arg)
{
	restart_test *t = arg;
	char key[96];
	snprintf(key, sizeof(key), "concert:{%lld}:active", (long long)t->concert_id);
	redisContext *c = NULL;
	while (atomic_load(&t->phase) != STOPPING) {
		if (!c)
			c = rt_redis(t->port);
		long long n = c ? rt_redis_int(c, "ZCARD %s", key) : -1;
		if (n < 0 && c) {
			redisFree(c);
			c = NULL;
		}
		if (n >= 0) {
			atomic_fetch_add(&t->samples, 1);
			if (n > atomic_load(&t->most_active))
				atomic_store(&t->most_active, n);
		}
		if (n < 0)
			rt_pause_ms(5);
	}
	if (c)
		redisFree(c);
	return NULL;
}

/* Waits until every poller's counter for `phase` reaches `least`. */
static void wait_all(restart_test *t, int phase, int unavailable, uint64_t least)
{
	int64_t deadline = rt_monotonic_ms() + WAIT_MS;
	for (;;) {
		int all = 1;
		for (int p = 0; p < POLLERS; p++) {
			counters *c = &t->by_phase[p][phase];
			if ((unavailable ? atomic_load(&c->unavailable) : atomic_load(&c->ok)) < least)
				all = 0;
		}
		if (all)
			return;
		if (atomic_load(&t->other_seen))
			fail_msg("unexpected error: %s", t->other_error);
		if (rt_monotonic_ms() > deadline)
			fail_msg("pollers did not all see %s in phase %d within %d ms",
				 unavailable ? "CONCERT_EUNAVAILABLE" : "success", phase, WAIT_MS);
		rt_pause_ms(5);
	}
}

static void wait_users_back(restart_test *t)
{
	int64_t deadline = rt_monotonic_ms() + WAIT_MS;
	for (int i = 0; i < USERS; i++)
		while (!atomic_load(&t->users[i].ok_back)) {
			if (atomic_load(&t->other_seen))
				fail_msg("unexpected error: %s", t->other_error);
			if (rt_monotonic_ms() > deadline)
				fail_msg("user %d never succeeded after the restart", i);
			rt_pause_ms(5);
		}
}

static concert_queue_status *status_of(restart_test *t, const char *token)
{
	concert_queue_status *st = NULL;
	int rc = concert_queue_status_get(t->engine, &st, token);
	if (rc != 0)
		fail_msg("status: %s (%s)", concert_error_name(rc), concert_error_last()->message);
	return st;
}

static void open_engine(restart_test *t)
{
	char uri[160];
	rt_uri(uri, sizeof(uri), t->port, "?timeout_ms=500&connect_timeout_ms=500&pool=8");
	concert_options o;
	assert_int_equal(concert_options_init(&o, CONCERT_OPTIONS_VERSION), 0);
	o.store = "memory:";
	o.queue = uri;
	o.secret = secret;
	o.secret_len = sizeof(secret) - 1;
	o.max_active = MAX_ACTIVE;
	o.wait_idle_ttl = 30 * 60 * 1000;
	o.active_ttl = 30 * 60 * 1000;
	if (concert_engine_open(&t->engine, &o) != 0)
		fail_msg("engine: %s", concert_error_last()->message);
	concert_time now = rt_now();
	assert_int_equal(concert_concert_add(t->engine, &t->concert_id, "restart", now - 1000,
					     now + 24 * 3600 * 1000), 0);
}

static void restart_scenario(int aof)
{
	static restart_test t;
	memset(&t, 0, sizeof(t));
	t.aof = aof;
	t.port = rt_spare_start(aof ? "restart-aof" : "restart-plain", aof, 1);
	open_engine(&t);
	for (int i = 0; i < USERS; i++) {
		concert_queue_status *st = NULL;
		snprintf(t.users[i].user, sizeof(t.users[i].user), "restart-%s-%d", rt_run_tag(), i);
		assert_int_equal(concert_queue_enter(t.engine, &st, t.users[i].user, t.concert_id), 0);
		assert_int_equal(st->state, i < MAX_ACTIVE ? CONCERT_QUEUE_ACTIVE : CONCERT_QUEUE_WAITING);
		concert_sys_strlcpy(t.users[i].token, st->token, sizeof(t.users[i].token));
		concert_sys_strlcpy(t.users[i].old_token, st->token, sizeof(t.users[i].old_token));
		t.users[i].state_before = st->state;
		t.users[i].position_before = st->position;
		concert_free(st);
	}

	poller pollers[POLLERS];
	pthread_t threads[POLLERS], sampler;
	assert_int_equal(pthread_create(&sampler, NULL, sampler_main, &t), 0);
	for (int p = 0; p < POLLERS; p++) {
		pollers[p] = (poller){ &t, p };
		assert_int_equal(pthread_create(&threads[p], NULL, poller_main, &pollers[p]), 0);
	}
	wait_all(&t, UP, 0, 3);

	atomic_store(&t.phase, CRASHING);
	rt_server("crash", rt_spare_dir(), t.port, aof);
	atomic_store(&t.phase, DOWN);
	wait_all(&t, DOWN, 1, 3);

	atomic_store(&t.phase, RESTARTING);
	rt_server("start", rt_spare_dir(), t.port, aof);
	atomic_store(&t.phase, BACK);
	wait_users_back(&t);
	wait_all(&t, BACK, 0, 3);

	atomic_store(&t.phase, STOPPING);
	for (int p = 0; p < POLLERS; p++)
		pthread_join(threads[p], NULL);
	pthread_join(sampler, NULL);

	if (atomic_load(&t.other_seen))
		fail_msg("unexpected error: %s", t.other_error);
	for (int p = 0; p < POLLERS; p++) {
		counters *c = t.by_phase[p];
		print_message("poller %d: up %llu ok; down %llu unavailable; back %llu ok, %llu "
			      "unavailable before the first success, %llu unknown\n",
			      p, (unsigned long long)atomic_load(&c[UP].ok),
			      (unsigned long long)atomic_load(&c[DOWN].unavailable),
			      (unsigned long long)atomic_load(&c[BACK].ok),
			      (unsigned long long)atomic_load(&c[BACK].unavailable),
			      (unsigned long long)atomic_load(&c[BACK].etoken));
		assert_int_equal(atomic_load(&c[UP].unavailable) + atomic_load(&c[UP].etoken), 0);
		/* Down: nothing but CONCERT_EUNAVAILABLE. */
		assert_int_equal(atomic_load(&c[DOWN].ok) + atomic_load(&c[DOWN].etoken), 0);
		/* Back: once a call went through, it just works (without AOF,
		 * after one re-entry per user). A call racing the reconnection
		 * may still be turned away before that. */
		assert_int_equal(atomic_load(&c[BACK].unavailable_after_ok), 0);
		if (aof)
			assert_int_equal(atomic_load(&c[BACK].etoken), 0);
	}
	print_message("while down: \"%s\"\n", t.down_message);
	assert_non_null(strstr(t.down_message, "redis"));

	size_t active = 0;
	for (int i = 0; i < USERS; i++) {
		user_slot *u = &t.users[i];
		concert_queue_status *st = status_of(&t, u->token);
		active += st->state == CONCERT_QUEUE_ACTIVE;
		if (aof) {
			/* Same token, same state, same place. */
			assert_int_equal(u->reentered, 0);
			assert_int_equal(st->state, u->state_before);
			assert_int_equal(st->position, u->position_before);
		} else {
			assert_int_equal(u->reentered, 1);
			/* The old token is still genuine, but the queue no longer knows it. */
			concert_token_claims claims;
			int rc = concert_token_verify(&claims, u->old_token, strlen(u->old_token), secret,
						      sizeof(secret) - 1, t.concert_id, rt_now());
			assert_true(rc == 0 || rc == CONCERT_ENOT_ACTIVE);
			assert_int_equal(concert_queue_validate(t.engine, NULL, u->old_token, t.concert_id),
					 CONCERT_ETOKEN);
		}
		concert_free(st);
	}
	/* No double admission: the slots are full, never over. */
	assert_int_equal(active, MAX_ACTIVE);
	print_message("%lld samples of the active set, at most %lld\n",
		      (long long)atomic_load(&t.samples), (long long)atomic_load(&t.most_active));
	assert_true(atomic_load(&t.samples) > 0);
	assert_true(atomic_load(&t.most_active) <= MAX_ACTIVE);

	concert_engine_close(t.engine);
}

static void test_restart_without_persistence(void **state)
{
	(void)state;
	restart_scenario(0);
}

static void test_restart_with_aof(void **state)
{
	(void)state;
	restart_scenario(1);
}

static pid_t server_pid(const char *dir)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/redis.pid", dir);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	long pid = 0;
	assert_int_equal(fscanf(f, "%ld", &pid), 1);
	fclose(f);
	return (pid_t)pid;
}

#define SPARE_POLICY { 1, 0, 60000, 60000 }

/* A queue on a fresh spare server (URI query `query`), one user entered. */
static void *spare_queue(const char *name, const char *query, const concert_queue_backend **q,
			 int64_t *concert, concert_queue_entry *e)
{
	int port;
	void *ctx = rt_spare_queue(name, query, q, &port);
	concert_queue_policy policy = SPARE_POLICY;
	*concert = rt_unique_id();
	assert_int_equal((*q)->enter(ctx, e, "spare-user", *concert, &policy, rt_now()), 0);
	return ctx;
}

/* Once the server runs again, status answers (the user is ACTIVE). */
static void answered_after_sigcont(const concert_queue_backend *q, void *ctx, int64_t concert,
				   concert_queue_entry *e)
{
	concert_queue_policy policy = SPARE_POLICY;
	int64_t deadline = rt_monotonic_ms() + WAIT_MS;
	int rc;
	while ((rc = q->status(ctx, e, concert, e->token_id, 0, &policy, rt_now())) != 0) {
		assert_int_equal(rc, CONCERT_EUNAVAILABLE);
		if (rt_monotonic_ms() > deadline)
			fail_msg("no success after SIGCONT");
		rt_pause_ms(10);
	}
	assert_int_equal(e->state, CONCERT_QUEUE_ACTIVE);
}

/* A server that stops answering costs one timeout per call, not a hang. */
static void test_command_timeout(void **state)
{
	(void)state;
	const concert_queue_backend *q;
	int64_t concert;
	concert_queue_entry e;
	void *ctx = spare_queue("timeout", "?timeout_ms=300&connect_timeout_ms=300", &q, &concert, &e);
	concert_queue_policy policy = SPARE_POLICY;

	pid_t pid = server_pid(rt_spare_dir());
	assert_int_equal(kill(pid, SIGSTOP), 0);
	int64_t started = rt_monotonic_ms();
	int rc = q->status(ctx, &e, concert, e.token_id, 0, &policy, rt_now());
	int64_t took = rt_monotonic_ms() - started;
	char message[256];
	concert_sys_strlcpy(message, concert_error_last()->message, sizeof(message));
	/* A second call while it is still stopped: a fresh connection, same timeout. */
	int rc2 = q->status(ctx, &e, concert, e.token_id, 0, &policy, rt_now());
	assert_int_equal(kill(pid, SIGCONT), 0);
	print_message("stopped server: %s after %lld ms (\"%s\")\n", concert_error_name(rc),
		      (long long)took, message);
	assert_int_equal(rc, CONCERT_EUNAVAILABLE);
	assert_int_equal(rc2, CONCERT_EUNAVAILABLE);
	assert_true(took >= 250 && took < 5000);

	answered_after_sigcont(q, ctx, concert, &e);
	q->close(ctx);
}

/* Callers sharing one connection to a server that stopped answering. */
enum { SHARED_CALLERS = 4 };

typedef struct shared_call {
	const concert_queue_backend *q;
	void *ctx;
	int64_t concert, token;
	int rc;
	int64_t took;
} shared_call;

static void *shared_call_main(void *arg)
{
	shared_call *c = arg;
	concert_queue_policy policy = SPARE_POLICY;
	concert_queue_entry e;
	int64_t started = rt_monotonic_ms();
	c->rc = c->q->status(c->ctx, &e, c->concert, c->token, 0, &policy, rt_now());
	c->took = rt_monotonic_ms() - started;
	return NULL;
}

/*
 * Calls pipelined on one connection (pool=1) to a stopped server all fail
 * with the one timeout of the reading caller, none hangs; the next calls
 * after SIGCONT succeed.
 */
static void test_shared_timeout(void **state)
{
	(void)state;
	const concert_queue_backend *q;
	int64_t concert;
	concert_queue_entry e;
	void *ctx = spare_queue("shared-timeout", "?timeout_ms=300&connect_timeout_ms=300&pool=1", &q,
				&concert, &e);

	pid_t pid = server_pid(rt_spare_dir());
	assert_int_equal(kill(pid, SIGSTOP), 0);
	shared_call calls[SHARED_CALLERS];
	pthread_t threads[SHARED_CALLERS];
	for (int i = 0; i < SHARED_CALLERS; i++) {
		calls[i] = (shared_call){ q, ctx, concert, e.token_id, 0, 0 };
		assert_int_equal(pthread_create(&threads[i], NULL, shared_call_main, &calls[i]), 0);
	}
	for (int i = 0; i < SHARED_CALLERS; i++)
		pthread_join(threads[i], NULL);
	assert_int_equal(kill(pid, SIGCONT), 0);
	for (int i = 0; i < SHARED_CALLERS; i++) {
		print_message("caller %d: %s after %lld ms\n", i, concert_error_name(calls[i].rc),
			      (long long)calls[i].took);
		assert_int_equal(calls[i].rc, CONCERT_EUNAVAILABLE);
		assert_true(calls[i].took < 5000);
	}

	answered_after_sigcont(q, ctx, concert, &e);
	q->close(ctx);
}

/* Libraries of ours on the server (FUNCTION LIST, by name prefix). */
static size_t our_libraries(redisContext *c)
{
	redisReply *r = redisCommand(c, "FUNCTION LIST LIBRARYNAME concert_*");
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	size_t n = r->elements;
	freeReplyObject(r);
	return n;
}

/*
 * FUNCTION FLUSH (or a restart without persistence) forgets the library:
 * loaded again on "Function not found", and the call goes through.
 */
static void test_library_reload(void **state)
{
	(void)state;
	const concert_queue_backend *q;
	int port;
	void *ctx = rt_spare_queue("library", "?pool=1", &q, &port);

	redisContext *c = rt_redis(port);
	assert_non_null(c);
	assert_int_equal(our_libraries(c), 1);
	redisReply *r = redisCommand(c, "FUNCTION FLUSH");
	freeReplyObject(r);
	assert_int_equal(our_libraries(c), 0);

	concert_queue_policy policy = SPARE_POLICY;
	int64_t concert = rt_unique_id();
	concert_queue_entry e;
	assert_int_equal(q->enter(ctx, &e, "library-user", concert, &policy, rt_now()), 0);
	assert_int_equal(q->status(ctx, &e, concert, e.token_id, 0, &policy, rt_now()), 0);
	assert_int_equal(e.state, CONCERT_QUEUE_ACTIVE);
	assert_int_equal(our_libraries(c), 1);
	redisFree(c);
	q->close(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_restart_without_persistence, rt_spare_teardown),
		cmocka_unit_test_teardown(test_restart_with_aof, rt_spare_teardown),
		cmocka_unit_test_teardown(test_command_timeout, rt_spare_teardown),
		cmocka_unit_test_teardown(test_shared_timeout, rt_spare_teardown),
		cmocka_unit_test_teardown(test_library_reload, rt_spare_teardown),
	};
	return cmocka_run_group_tests_name("redis.restart", tests, NULL, NULL);
}
