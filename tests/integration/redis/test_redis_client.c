/*
 * The Redis backend's URIs, the lock slot's contract (sys/lock.h), the
 * queue's optional counts method, calls pipelined on shared connections and
 * the adoption of the counters of the older key layout, against the shared
 * test server; each test's keys carry a prefix of its own run (or a concert
 * id of its own). And that a status with nothing to write runs no function,
 * counted on a server of the test's own.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "integration/redis/redis_test.h"
#include "storage/redis/redis.h"

/* ---- URIs -------------------------------------------------------------------- */

static void test_uri_forms(void **state)
{
	(void)state;
	redis_uri u;
	assert_int_equal(redis_uri_parse(&u, "redis://cache.local"), 0);
	assert_string_equal(u.host, "cache.local");
	assert_int_equal(u.port, 6379);
	assert_int_equal(u.db, 0);
	assert_int_equal(u.pool, 8);
	assert_int_equal(u.timeout_ms, 1000);
	assert_int_equal(u.connect_timeout_ms, 1000);
	assert_null(u.path);
	assert_null(u.password);
	assert_string_equal(u.prefix, "");
	redis_uri_free(&u);

	assert_int_equal(redis_uri_parse(&u, "redis://app:s%40cret@10.0.0.7:6380/3?pool=32&"
					     "timeout_ms=250&connect_timeout_ms=50&prefix=prod:a-b."),
			 0);
	assert_string_equal(u.host, "10.0.0.7");
	assert_int_equal(u.port, 6380);
	assert_int_equal(u.db, 3);
	assert_string_equal(u.username, "app");
	assert_string_equal(u.password, "s@cret");
	assert_int_equal(u.pool, 32);
	assert_int_equal(u.timeout_ms, 250);
	assert_int_equal(u.connect_timeout_ms, 50);
	assert_string_equal(u.prefix, "prod:a-b.");
	redis_uri_free(&u);

	assert_int_equal(redis_uri_parse(&u, "redis://:pw@[::1]:7000/"), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 7000);
	assert_null(u.username);
	assert_string_equal(u.password, "pw");
	redis_uri_free(&u);

	assert_int_equal(redis_uri_parse(&u, "redis:///run/redis/redis.sock?db=2"), 0);
	assert_null(u.host);
	assert_string_equal(u.path, "/run/redis/redis.sock");
	assert_int_equal(u.db, 2);
	redis_uri_free(&u);
}

static void test_uri_errors(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"http://h", "redis:/h", "redis://", "redis:///", "redis://:1", "redis://h:0",
		"redis://h:65536", "redis://h:12x", "redis://h/x", "redis://h/-1", "redis://h?pool=0",
		"redis://h?pool=1025", "redis://h?pool", "redis://h?bogus=1", "redis://h?prefix=a*b",
		"redis://h?prefix=a{b}", "redis://:p%4@h", "redis://:p%00@h", "redis://[::1",
		"redis://[::1]x", "redis://h?timeout_ms=0",
		"redis://h?prefix=0123456789012345678901234567890123456789012345678901234567890123456789",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		redis_uri u;
		int rc = redis_uri_parse(&u, bad[i]);
		if (rc != CONCERT_EINVAL)
			fail_msg("'%s' parsed (%d)", bad[i], rc);
		assert_non_null(strstr(concert_error_last()->message, "redis"));
	}
}

/* An unreachable server fails open clearly, not after a hang. */
static void test_open_unreachable(void **state)
{
	(void)state;
	char uri[160];
	/* The spare port: its server only runs inside redis.restart and
	 * test_status_is_one_read, below. */
	int port = rt_env_int("CONCERT_TEST_REDIS_SPARE_PORT");
	rt_uri(uri, sizeof(uri), port, "?connect_timeout_ms=200");
	const concert_lock_backend *lock = concert_registry_lock(uri);
	assert_non_null(lock);
	concert_backend_env env = rt_backend_env();
	void *ctx = (void *)1;
	int64_t started = rt_monotonic_ms();
	int rc = lock->open(&ctx, uri, &env);
	if (rc == 0) {
		lock->close(ctx);
		skip();  /* something else listens there; nothing to check */
	}
	assert_int_equal(rc, CONCERT_EUNAVAILABLE);
	assert_null(ctx);
	char where[64];
	snprintf(where, sizeof(where), "redis 127.0.0.1:%d", port);
	assert_non_null(strstr(concert_error_last()->message, where));
	assert_true(rt_monotonic_ms() - started < 5000);
}

/* ---- the lock slot --------------------------------------------------------------- */

typedef struct lock_fixture {
	const concert_lock_backend *lock;
	void *ctx;
	redisContext *redis;
	char prefix[64];
	int64_t schedule;
} lock_fixture;

static int lock_setup(void **state)
{
	static lock_fixture f;
	char uri[256];
	memset(&f, 0, sizeof(f));
	snprintf(f.prefix, sizeof(f.prefix), "lk-%s:", rt_run_tag());
	char query[96];
	snprintf(query, sizeof(query), "?prefix=%s", f.prefix);
	int port = rt_env_int("CONCERT_TEST_REDIS_PORT");
	rt_uri(uri, sizeof(uri), port, query);
	f.lock = concert_registry_lock(uri);
	assert_non_null(f.lock);
	assert_int_equal(f.lock->version, CONCERT_LOCK_BACKEND_VERSION);
	concert_backend_env env = rt_backend_env();
	assert_int_equal(f.lock->open(&f.ctx, uri, &env), 0);
	assert_int_equal(f.lock->health(f.ctx), 0);
	f.redis = rt_redis(port);
	assert_non_null(f.redis);
	f.schedule = rt_unique_id();
	*state = &f;
	return 0;
}

static int lock_teardown(void **state)
{
	lock_fixture *f = *state;
	f->lock->close(f->ctx);
	redisFree(f->redis);
	return 0;
}

static const char *seat_key(lock_fixture *f, int32_t seat)
{
	static char key[128];
	snprintf(key, sizeof(key), "%sseat:{%lld}:%d", f->prefix, (long long)f->schedule, (int)seat);
	return key;
}

static void assert_conflicts(const int32_t *want, size_t n)
{
	const concert_error *e = concert_error_last();
	assert_int_equal(e->code, CONCERT_ESEAT_UNAVAILABLE);
	assert_int_equal(e->conflict_count, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(e->conflicts[i], want[i]);
}

static void test_lock_all_or_none(void **state)
{
	lock_fixture *f = *state;
	const int32_t first[] = { 1, 2, 3 }, second[] = { 2, 3, 4 }, four[] = { 4 };
	assert_int_equal(f->lock->acquire(f->ctx, f->schedule, first, 3, "aaaa", 60000), 0);
	assert_int_equal(f->lock->acquire(f->ctx, f->schedule, second, 3, "bbbb", 60000),
			 CONCERT_ESEAT_UNAVAILABLE);
	const int32_t taken[] = { 2, 3 };
	assert_conflicts(taken, 2);
	/* None of the second call's seats was locked, not even the free one. */
	assert_int_equal(rt_redis_int(f->redis, "EXISTS %s", seat_key(f, 4)), 0);
	assert_int_equal(f->lock->acquire(f->ctx, f->schedule, four, 1, "cccc", 60000), 0);
	/* One seat takes the SET NX PX path; its conflict is reported the same way. */
	assert_int_equal(f->lock->acquire(f->ctx, f->schedule, four, 1, "dddd", 60000),
			 CONCERT_ESEAT_UNAVAILABLE);
	assert_conflicts(four, 1);
	/* The value and the TTL are the caller's. */
	redisReply *r = redisCommand(f->redis, "GET %s", seat_key(f, 2));
	assert_non_null(r);
	assert_string_equal(r->str, "aaaa");
	freeReplyObject(r);
	long long pttl = rt_redis_int(f->redis, "PTTL %s", seat_key(f, 1));
	assert_true(pttl > 0 && pttl <= 60000);
}

static void test_lock_release(void **state)
{
	lock_fixture *f = *state;
	const int32_t seats[] = { 10, 11 }, ten[] = { 10 };
	assert_int_equal(f->lock->acquire(f->ctx, f->schedule, seats, 2, "mine", 60000), 0);
	/* Compare-and-delete: another value removes nothing. */
	assert_int_equal(f->lock->release(f->ctx, f->schedule, seats, 2, "theirs"), 0);
	assert_int_equal(rt_redis_int(f->redis, "EXISTS %s", seat_key(f, 10)), 1);
	assert_int_equal(rt_redis_int(f->redis, "EXISTS %s", seat_key(f, 11)), 1);
	/* The owner's value removes its locks (a missing seat is no error). */
	const int32_t more[] = { 10, 12 };
	assert_int_equal(f->lock->release(f->ctx, f->schedule, more, 2, "mine"), 0);
	assert_int_equal(rt_redis_int(f->redis, "EXISTS %s", seat_key(f, 10)), 0);
	assert_int_equal(rt_redis_int(f->redis, "EXISTS %s", seat_key(f, 11)), 1);
	/* A lock taken over after expiry is not the old owner's to delete. */
	assert_int_equal(f->lock->acquire(f->ctx, f->schedule, ten, 1, "next", 60000), 0);
	assert_int_equal(f->lock->release(f->ctx, f->schedule, ten, 1, "mine"), 0);
	assert_int_equal(rt_redis_int(f->redis, "EXISTS %s", seat_key(f, 10)), 1);
	/* NULL: the store freed the seats; whoever holds the locks, they go. */
	assert_int_equal(f->lock->release(f->ctx, f->schedule, seats, 2, NULL), 0);
	assert_int_equal(rt_redis_int(f->redis, "EXISTS %s", seat_key(f, 10)), 0);
	assert_int_equal(rt_redis_int(f->redis, "EXISTS %s", seat_key(f, 11)), 0);
	assert_int_equal(f->lock->acquire(f->ctx, f->schedule, seats, 2, "again", 60000), 0);
}

/* A lock ends by itself: PX, in Redis's own time. */
static void test_lock_expiry(void **state)
{
	lock_fixture *f = *state;
	const int32_t seat[] = { 20 };
	assert_int_equal(f->lock->acquire(f->ctx, f->schedule, seat, 1, "short", 50), 0);
	int64_t deadline = rt_monotonic_ms() + 10000;
	while (rt_redis_int(f->redis, "EXISTS %s", seat_key(f, 20)) == 1) {
		assert_true(rt_monotonic_ms() < deadline);
		rt_pause_ms(10);
	}
	assert_int_equal(f->lock->acquire(f->ctx, f->schedule, seat, 1, "later", 60000), 0);
}

static void test_lock_bad_arguments(void **state)
{
	lock_fixture *f = *state;
	const int32_t seat[] = { 30 };
	char long_value[CONCERT_LOCK_VALUE_MAX + 2];
	memset(long_value, 'v', sizeof(long_value) - 1);
	long_value[sizeof(long_value) - 1] = '\0';
	assert_int_equal(f->lock->acquire(f->ctx, f->schedule, seat, 1, NULL, 1000), CONCERT_EINVAL);
	assert_int_equal(f->lock->acquire(f->ctx, f->schedule, seat, 1, "", 1000), CONCERT_EINVAL);
	assert_int_equal(f->lock->acquire(f->ctx, f->schedule, seat, 1, long_value, 1000),
			 CONCERT_EINVAL);
	assert_int_equal(f->lock->acquire(f->ctx, f->schedule, seat, 1, "v", 0), CONCERT_EINVAL);
	assert_int_equal(f->lock->acquire(f->ctx, f->schedule, seat, 0, "v", 1000), CONCERT_EINVAL);
	assert_int_equal(f->lock->acquire(f->ctx, 0, seat, 1, "v", 1000), CONCERT_EINVAL);
	assert_int_equal(f->lock->release(f->ctx, f->schedule, seat, 1, long_value), CONCERT_EINVAL);
	assert_int_equal(rt_redis_int(f->redis, "EXISTS %s", seat_key(f, 30)), 0);
	/* 64 seats, the most a hold has, in one script. */
	int32_t many[CONCERT_HOLD_SEATS_MAX];
	for (int i = 0; i < CONCERT_HOLD_SEATS_MAX; i++)
		many[i] = 100 + i;
	assert_int_equal(f->lock->acquire(f->ctx, f->schedule, many, CONCERT_HOLD_SEATS_MAX, "m", 60000), 0);
	assert_int_equal(f->lock->release(f->ctx, f->schedule, many, CONCERT_HOLD_SEATS_MAX, "m"), 0);
	assert_int_equal(rt_redis_int(f->redis, "EXISTS %s", seat_key(f, 163)), 0);
}

/* Another schedule's seat with the same number is another lock. */
static void test_lock_schedules_apart(void **state)
{
	lock_fixture *f = *state;
	const int32_t seat[] = { 40 };
	int64_t other = rt_unique_id();
	assert_int_equal(f->lock->acquire(f->ctx, f->schedule, seat, 1, "x", 60000), 0);
	assert_int_equal(f->lock->acquire(f->ctx, other, seat, 1, "y", 60000), 0);
	assert_int_equal(f->lock->release(f->ctx, other, seat, 1, NULL), 0);
	assert_int_equal(rt_redis_int(f->redis, "EXISTS %s", seat_key(f, 40)), 1);
}

/* ---- the queue's counts ------------------------------------------------------------ */

/* Live tokens at `now`: a token past its deadline no longer counts. */
static void test_queue_counts(void **state)
{
	(void)state;
	char uri[160];
	rt_uri(uri, sizeof(uri), rt_env_int("CONCERT_TEST_REDIS_PORT"), NULL);
	const concert_queue_backend *q = concert_registry_queue(uri);
	assert_non_null(q);
	assert_non_null(q->counts);
	concert_backend_env env = rt_backend_env();
	void *ctx = NULL;
	assert_int_equal(q->open(&ctx, uri, &env), 0);
	const concert_time t0 = 1800000000000LL, idle = 10000, active_ttl = 60000;
	concert_queue_policy policy = { 1, 0, idle, active_ttl };
	int64_t concert = rt_unique_id();
	uint64_t waiting = 99, active = 99;
	assert_int_equal(q->counts(ctx, concert, t0, &waiting, &active), 0);
	assert_int_equal(waiting, 0);
	assert_int_equal(active, 0);
	concert_queue_entry e;
	assert_int_equal(q->enter(ctx, &e, "counts-a", concert, &policy, t0), 0);
	assert_int_equal(q->enter(ctx, &e, "counts-b", concert, &policy, t0), 0);
	assert_int_equal(q->enter(ctx, &e, "counts-c", concert, &policy, t0 + 5000), 0);
	assert_int_equal(q->counts(ctx, concert, t0 + 1, &waiting, &active), 0);
	assert_int_equal(waiting, 2);
	assert_int_equal(active, 1);
	/* b's idle deadline passed (c's did not); nothing has expired it yet. */
	assert_int_equal(q->counts(ctx, concert, t0 + idle, &waiting, &active), 0);
	assert_int_equal(waiting, 1);
	assert_int_equal(active, 1);
	assert_int_equal(q->counts(ctx, concert, t0 + active_ttl, &waiting, &active), 0);
	assert_int_equal(waiting, 0);
	assert_int_equal(active, 0);
	q->close(ctx);
}

/* ---- pipelining ------------------------------------------------------------------ */

enum { PIPE_THREADS = 16, PIPE_ROUNDS = 300 };

typedef struct pipe_shared {
	const concert_queue_backend *queue;
	void *queue_ctx;
	const concert_lock_backend *lock;
	void *lock_ctx;
	int64_t concert, schedule;
	concert_queue_policy policy;
	_Atomic int failures;
	char failure[256];
} pipe_shared;

typedef struct pipe_worker {
	pipe_shared *s;
	int index;
} pipe_worker;

static void pipe_fail(pipe_shared *s, int index, const char *what, int rc)
{
	if (atomic_fetch_add(&s->failures, 1) == 0)
		snprintf(s->failure, sizeof(s->failure), "thread %d: %s: %s (%s)", index, what,
			 concert_error_name(rc), concert_error_last()->message);
}

/*
 * Each caller checks that every reply is its own: its token and user from
 * status, and on its own seat a lock, a conflict naming that seat, a
 * release.
 */
static void *pipe_main(void *arg)
{
	pipe_worker *w = arg;
	pipe_shared *s = w->s;
	char user[32], value[16];
	snprintf(user, sizeof(user), "pipe-user-%d", w->index);
	snprintf(value, sizeof(value), "v%d", w->index);
	const int32_t seat = w->index + 1;
	concert_queue_entry e;
	int rc = s->queue->enter(s->queue_ctx, &e, user, s->concert, &s->policy, rt_now());
	if (rc != 0) {
		pipe_fail(s, w->index, "enter", rc);
		return NULL;
	}
	const int64_t token = e.token_id;
	for (int i = 0; i < PIPE_ROUNDS && !atomic_load(&s->failures); i++) {
		rc = s->queue->status(s->queue_ctx, &e, s->concert, token, 0, &s->policy, rt_now());
		if (rc != 0 || e.token_id != token || strcmp(e.user_id, user) != 0) {
			pipe_fail(s, w->index, "status answered another token", rc);
			break;
		}
		rc = s->lock->acquire(s->lock_ctx, s->schedule, &seat, 1, value, 60000);
		if (rc != 0) {
			pipe_fail(s, w->index, "acquire of a free seat", rc);
			break;
		}
		rc = s->lock->acquire(s->lock_ctx, s->schedule, &seat, 1, value, 60000);
		const concert_error *err = concert_error_last();
		if (rc != CONCERT_ESEAT_UNAVAILABLE || err->conflict_count != 1 ||
		    err->conflicts[0] != seat) {
			pipe_fail(s, w->index, "acquire of a locked seat", rc);
			break;
		}
		rc = s->lock->release(s->lock_ctx, s->schedule, &seat, 1, value);
		if (rc != 0) {
			pipe_fail(s, w->index, "release", rc);
			break;
		}
	}
	return NULL;
}

/* 16 callers on 2 connections: their commands share them, replies stay apart. */
static void test_pipelined_callers(void **state)
{
	(void)state;
	char uri[160];
	rt_uri(uri, sizeof(uri), rt_env_int("CONCERT_TEST_REDIS_PORT"), "?pool=2");
	static pipe_shared s;
	memset(&s, 0, sizeof(s));
	s.queue = concert_registry_queue(uri);
	s.lock = concert_registry_lock(uri);
	concert_backend_env env = rt_backend_env();
	assert_int_equal(s.queue->open(&s.queue_ctx, uri, &env), 0);
	assert_int_equal(s.lock->open(&s.lock_ctx, uri, &env), 0);
	s.concert = rt_unique_id();
	s.schedule = rt_unique_id();
	s.policy = (concert_queue_policy){ 4, 0, 600000, 600000 };
	pthread_t threads[PIPE_THREADS];
	pipe_worker workers[PIPE_THREADS];
	for (int i = 0; i < PIPE_THREADS; i++) {
		workers[i] = (pipe_worker){ &s, i };
		assert_int_equal(pthread_create(&threads[i], NULL, pipe_main, &workers[i]), 0);
	}
	for (int i = 0; i < PIPE_THREADS; i++)
		pthread_join(threads[i], NULL);
	if (atomic_load(&s.failures))
		fail_msg("%d failure(s), first: %s", atomic_load(&s.failures), s.failure);
	uint64_t waiting = 0, active = 0;
	assert_int_equal(s.queue->counts(s.queue_ctx, s.concert, rt_now(), &waiting, &active), 0);
	assert_int_equal(active, 4);
	assert_int_equal(waiting, PIPE_THREADS - 4);
	s.queue->close(s.queue_ctx);
	s.lock->close(s.lock_ctx);
}

/* ---- the older key layout -------------------------------------------------------------- */

/*
 * A concert left by a library that kept its counters in a HASH of their
 * own (concert:{C}:meta): the first call adopts them, so sequence numbers
 * go on and the admissions count stays.
 */
static void test_legacy_counters(void **state)
{
	(void)state;
	char prefix[64], query[96], uri[192], k[7][160];
	snprintf(prefix, sizeof(prefix), "legacy-%s:", rt_run_tag());
	snprintf(query, sizeof(query), "?prefix=%s", prefix);
	int port = rt_env_int("CONCERT_TEST_REDIS_PORT");
	rt_uri(uri, sizeof(uri), port, query);
	const int64_t concert = rt_unique_id();
	static const char *const suffix[7] = { "meta", "waiting", "idle", "active", "tokens",
		"users", "ended" };
	for (int i = 0; i < 7; i++)
		snprintf(k[i], sizeof(k[i]), "%sconcert:{%lld}:%s", prefix, (long long)concert,
			 suffix[i]);
	const concert_time t0 = 1800000000000LL, hour = 3600000;
	redisContext *r = rt_redis(port);
	assert_non_null(r);
	/* Token 11 of user a ACTIVE, token 12 of user b WAITING behind it. */
	rt_redis_int(r, "HSET %s seq 2 admitted 1 retention %lld", k[0], (long long)(2 * hour));
	rt_redis_int(r, "HSET %s 11 2|1|%lld|%lld|0|legacy-a 12 1|2|%lld|%lld|0|legacy-b", k[4],
		     (long long)t0, (long long)(t0 + hour), (long long)t0, (long long)(t0 + hour));
	rt_redis_int(r, "ZADD %s 2 12", k[1]);
	rt_redis_int(r, "ZADD %s %lld 12", k[2], (long long)(t0 + hour));
	rt_redis_int(r, "ZADD %s %lld 11", k[3], (long long)(t0 + hour));
	rt_redis_int(r, "HSET %s legacy-a 11 legacy-b 12", k[5]);

	const concert_queue_backend *q = concert_registry_queue(uri);
	concert_backend_env env = rt_backend_env();
	void *ctx = NULL;
	assert_int_equal(q->open(&ctx, uri, &env), 0);
	concert_queue_policy policy = { 1, 0, hour, hour };
	concert_queue_entry e;
	assert_int_equal(q->status(ctx, &e, concert, 12, 0, &policy, t0 + 1000), 0);
	assert_int_equal(e.state, CONCERT_QUEUE_WAITING);
	assert_int_equal(e.position, 1);
	assert_int_equal(e.admitted_total, 1);
	assert_int_equal(rt_redis_int(r, "EXISTS %s", k[0]), 0);
	assert_int_equal(q->enter(ctx, &e, "legacy-c", concert, &policy, t0 + 2000), 0);
	assert_int_equal(e.created, 1);
	assert_int_equal(e.position, 2);
	redisReply *seq = redisCommand(r, "HGET %s seq", k[4]);
	assert_non_null(seq);
	assert_string_equal(seq->str, "3");
	freeReplyObject(seq);
	/* The ACTIVE one still holds the only slot; once it is done, b is next. */
	assert_int_equal(q->complete(ctx, concert, 11, t0 + 3000), 0);
	uint32_t admitted = 0;
	assert_int_equal(q->admit(ctx, &admitted, concert, &policy, t0 + 3000), 0);
	assert_int_equal(q->status(ctx, &e, concert, 12, 0, &policy, t0 + 3000), 0);
	assert_int_equal(e.state, CONCERT_QUEUE_ACTIVE);
	assert_int_equal(e.admitted_total, 2);
	redisFree(r);
	q->close(ctx);
}

/* ---- what a status costs the server -------------------------------------------- */

/* Calls of `command` in the server's INFO commandstats (0 if never called). */
static long long command_calls(redisContext *r, const char *command)
{
	redisReply *reply = redisCommand(r, "INFO commandstats");
	assert_non_null(reply);
	assert_int_equal(reply->type, REDIS_REPLY_STRING);
	char want[64];
	snprintf(want, sizeof(want), "cmdstat_%s:calls=", command);
	const char *at = strstr(reply->str, want);
	long long calls = at ? strtoll(at + strlen(want), NULL, 10) : 0;
	freeReplyObject(reply);
	return calls;
}

static void assert_waiting_first(const concert_queue_backend *q, void *ctx, int64_t concert,
				 const concert_queue_entry *token, int touch,
				 const concert_queue_policy *policy)
{
	concert_queue_entry e;
	assert_int_equal(q->status(ctx, &e, concert, token->token_id, touch, policy, rt_now()), 0);
	assert_int_equal(e.state, CONCERT_QUEUE_WAITING);
	assert_int_equal(e.position, 1);
	assert_string_equal(e.user_id, token->user_id);
}

/*
 * A status with nothing to write is one HMGET, no function: counted by the
 * commands of a server of its own (the spare port; redis.client and
 * redis.restart never run at once). A heartbeat writes, so it calls the
 * function; so does a status when someone can be admitted.
 */
static void test_status_is_one_read(void **state)
{
	(void)state;
	const concert_queue_backend *q;
	int port;
	void *ctx = rt_spare_queue("one-read", NULL, &q, &port);
	redisContext *r = rt_redis(port);
	assert_non_null(r);
	concert_queue_policy policy = { 1, 0, 60000, 60000 };
	int64_t concert = rt_unique_id();
	concert_queue_entry first, second;
	assert_int_equal(q->enter(ctx, &first, "one-read-a", concert, &policy, rt_now()), 0);
	/* The longest user id: its record must still be read, not fall through. */
	char user[CONCERT_USER_ID_MAX + 1];
	memset(user, 'u', CONCERT_USER_ID_MAX);
	user[CONCERT_USER_ID_MAX] = '\0';
	assert_int_equal(q->enter(ctx, &second, user, concert, &policy, rt_now()), 0);
	assert_int_equal(first.state, CONCERT_QUEUE_ACTIVE);
	/* Calls before may have sent this thread to the function for a while. */
	for (int i = 0; i < 10; i++)
		assert_waiting_first(q, ctx, concert, &second, 0, &policy);

	long long fcalls = command_calls(r, "fcall"), reads = command_calls(r, "hmget");
	for (int i = 0; i < 5; i++)
		assert_waiting_first(q, ctx, concert, &second, 0, &policy);
	assert_int_equal(command_calls(r, "hmget"), reads + 5);
	assert_int_equal(command_calls(r, "fcall"), fcalls);

	assert_waiting_first(q, ctx, concert, &second, 1, &policy);
	assert_int_equal(command_calls(r, "fcall"), fcalls + 1);

	/* The head leaves: the next status admits, through the function. */
	assert_int_equal(q->leave(ctx, concert, first.token_id, rt_now()), 0);
	concert_queue_entry e;
	assert_int_equal(q->status(ctx, &e, concert, second.token_id, 0, &policy, rt_now()), 0);
	assert_int_equal(e.state, CONCERT_QUEUE_ACTIVE);
	assert_int_equal(e.admitted_total, 2);
	assert_int_equal(command_calls(r, "fcall"), fcalls + 3); /* the leave, and this status */

	redisFree(r);
	q->close(ctx);
}

/* ---- enters combined into one call -------------------------------------------------- */

enum { COMBINE_THREADS = 12 };

typedef struct combine_shared {
	const concert_queue_backend *q;
	void *ctx;
	int64_t concert;
	concert_queue_policy policy;
	_Atomic int arrived;
	concert_queue_entry entry[COMBINE_THREADS];
	int rc[COMBINE_THREADS];
} combine_shared;

typedef struct combine_worker {
	combine_shared *s;
	int index;
} combine_worker;

/* Threads 0 and 1 are one user (twins); every other thread a user of its own. */
static void combine_user(char *buf, size_t size, int index)
{
	if (index < 2)
		snprintf(buf, size, "combine-twin");
	else
		snprintf(buf, size, "combine-%d", index);
}

static void *combine_main(void *arg)
{
	combine_worker *w = arg;
	combine_shared *s = w->s;
	char user[32];
	combine_user(user, sizeof(user), w->index);
	atomic_fetch_add(&s->arrived, 1);
	s->rc[w->index] = s->q->enter(s->ctx, &s->entry[w->index], user, s->concert, &s->policy,
				      rt_now());
	return NULL;
}

/*
 * Concurrent enters through one context go to Redis together: with the
 * server holding writes (CLIENT PAUSE) the callers line up, and when it lets
 * them go they take fewer calls than enters. Whatever the batches, each
 * caller gets its own answer: a token of its own user, twins one token
 * (created once), and new tokens at positions 2..12 behind the one waiting,
 * each once, as status then reads them.
 */
static void test_enters_are_combined(void **state)
{
	(void)state;
	static combine_shared s;
	memset(&s, 0, sizeof(s));
	int port;
	s.ctx = rt_spare_queue("combine", NULL, &s.q, &port);
	redisContext *r = rt_redis(port);
	assert_non_null(r);
	s.concert = rt_unique_id();
	s.policy = (concert_queue_policy){ 1, 0, 600000, 600000 };
	concert_queue_entry active, waiting;
	assert_int_equal(s.q->enter(s.ctx, &active, "combine-active", s.concert, &s.policy, rt_now()), 0);
	assert_int_equal(s.q->enter(s.ctx, &waiting, "combine-wait", s.concert, &s.policy, rt_now()), 0);
	assert_int_equal(waiting.position, 1);

	long long fcalls = command_calls(r, "fcall");
	redisReply *reply = redisCommand(r, "CLIENT PAUSE 20000 WRITE");
	assert_non_null(reply);
	assert_int_equal(reply->type, REDIS_REPLY_STATUS);
	freeReplyObject(reply);
	pthread_t threads[COMBINE_THREADS];
	combine_worker workers[COMBINE_THREADS];
	for (int i = 0; i < COMBINE_THREADS; i++) {
		workers[i] = (combine_worker){ &s, i };
		assert_int_equal(pthread_create(&threads[i], NULL, combine_main, &workers[i]), 0);
	}
	while (atomic_load(&s.arrived) < COMBINE_THREADS)
		rt_pause_ms(1);
	rt_pause_ms(100); /* time to get in line; the answers below hold either way */
	reply = redisCommand(r, "CLIENT UNPAUSE");
	assert_non_null(reply);
	freeReplyObject(reply);
	for (int i = 0; i < COMBINE_THREADS; i++)
		pthread_join(threads[i], NULL);
	assert_true(command_calls(r, "fcall") - fcalls < COMBINE_THREADS);

	int at_position[COMBINE_THREADS + 2] = { 0 };
	for (int i = 0; i < COMBINE_THREADS; i++) {
		char user[32];
		combine_user(user, sizeof(user), i);
		const concert_queue_entry *e = &s.entry[i];
		assert_int_equal(s.rc[i], 0);
		assert_string_equal(e->user_id, user);
		assert_int_equal(e->state, CONCERT_QUEUE_WAITING);
		assert_in_range(e->position, 2, COMBINE_THREADS);
		if (i > 0)
			at_position[e->position]++;
		concert_queue_entry now;
		assert_int_equal(s.q->status(s.ctx, &now, s.concert, e->token_id, 0, &s.policy,
					     rt_now()), 0);
		assert_int_equal(now.position, e->position);
		assert_string_equal(now.user_id, user);
	}
	assert_int_equal(s.entry[0].token_id, s.entry[1].token_id);
	assert_int_equal(s.entry[0].created + s.entry[1].created, 1);
	for (int p = 2; p <= COMBINE_THREADS; p++)
		assert_int_equal(at_position[p], 1);
	for (int i = 2; i < COMBINE_THREADS; i++)
		assert_int_equal(s.entry[i].created, 1);
	redisFree(r);
	s.q->close(s.ctx);
}

/*
 * The enter function's answers for a batch, called directly (the client
 * never chooses the ids, so this is where taken ids can be forced): a new id
 * that is already a token's is refused alone ({ID_TAKEN}) while the others
 * of the batch are entered; two enters offering one new id get it once.
 */
/* Enters n (user, new id) pairs in one call; the reply has `elements` elements. */
static redisReply *enter_batch(redis_client *client, int64_t concert, const char *const *pairs,
			       int n, size_t elements)
{
	static const char *const suffix[8] = { "meta", "waiting", "idle", "active", "tokens",
		"users", "ended", "gone" };
	char keys[8][96], numbers[5][24];
	const char *argv[8 + 5 + 8];
	size_t len[8 + 5 + 8];
	const concert_queue_policy policy = { 1, 0, 600000, 600000 };
	const long long policy_args[5] = { rt_now(), policy.max_active, policy.admit_per_second,
		policy.wait_idle_ttl, policy.active_ttl };
	int argc = 0;
	for (int i = 0; i < 8; i++) {
		snprintf(keys[i], sizeof(keys[i]), "concert:{%lld}:%s", (long long)concert, suffix[i]);
		argv[argc++] = keys[i];
	}
	for (int i = 0; i < 5; i++) {
		snprintf(numbers[i], sizeof(numbers[i]), "%lld", policy_args[i]);
		argv[argc++] = numbers[i];
	}
	for (int i = 0; i < 2 * n; i++)
		argv[argc++] = pairs[i];
	for (int i = 0; i < argc; i++)
		len[i] = strlen(argv[i]);
	redisReply *r = NULL;
	assert_int_equal(redis_client_fcall(client, &r, REDIS_FN_ENTER, 8, argc, argv, len), 0);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_int_equal(r->elements, elements);
	return r;
}

/* Element i of a per-enter reply: {ID_TAKEN}, or an entry of `user` at `position`. */
static void assert_batch_answer(const redisReply *r, size_t i, const char *user, long long position)
{
	const redisReply *e = r->element[i];
	assert_int_equal(e->type, REDIS_REPLY_ARRAY);
	if (!user) {
		assert_int_equal(e->elements, 1);
		assert_int_equal(e->element[0]->integer, REDIS_REPLY_ID_TAKEN);
		return;
	}
	assert_int_equal(e->elements, 9);
	assert_int_equal(e->element[0]->integer, 0);
	assert_int_equal(e->element[2]->integer, CONCERT_QUEUE_WAITING);
	assert_int_equal(e->element[3]->integer, 1);
	assert_int_equal(e->element[4]->integer, position);
	assert_string_equal(e->element[8]->str, user);
}

static void test_enter_batch_ids(void **state)
{
	(void)state;
	char uri[160];
	rt_uri(uri, sizeof(uri), rt_env_int("CONCERT_TEST_REDIS_PORT"), NULL);
	concert_backend_env env = rt_backend_env();
	redis_client *client = NULL;
	assert_int_equal(redis_client_open(&client, uri, &env), 0);
	const int64_t concert = rt_unique_id();
	/* b-active ACTIVE (id 11), b-wait WAITING at 1 (id 12): the lean path's conditions. */
	const char *const first[] = { "b-active", "11", "b-wait", "12" };
	freeReplyObject(enter_batch(client, concert, first, 2, 2));

	const char *const taken[] = { "b-taken", "12", "b-new", "13" };
	redisReply *r = enter_batch(client, concert, taken, 2, 2);
	assert_batch_answer(r, 0, NULL, 0);
	assert_batch_answer(r, 1, "b-new", 2);
	freeReplyObject(r);

	const char *const twice[] = { "b-one", "14", "b-two", "14", "b-three", "15" };
	r = enter_batch(client, concert, twice, 3, 3);
	assert_batch_answer(r, 0, "b-one", 3);
	assert_batch_answer(r, 1, NULL, 0);
	assert_batch_answer(r, 2, "b-three", 4);
	freeReplyObject(r);

	/* The refused users hold no token: they enter next, at the back. */
	const char *const again[] = { "b-taken", "16", "b-two", "17" };
	/* The lean reply: {position of the first, issued, expires, admitted}. */
	r = enter_batch(client, concert, again, 2, 4);
	assert_int_equal(r->element[0]->integer, 5);
	assert_int_equal(r->element[3]->integer, 1);
	freeReplyObject(r);
	redis_client_close(client);
}

#define L(f) cmocka_unit_test_setup_teardown(f, lock_setup, lock_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uri_forms),
		cmocka_unit_test(test_uri_errors),
		cmocka_unit_test(test_open_unreachable),
		cmocka_unit_test(test_queue_counts),
		cmocka_unit_test(test_pipelined_callers),
		cmocka_unit_test(test_legacy_counters),
		cmocka_unit_test_teardown(test_status_is_one_read, rt_spare_teardown),
		cmocka_unit_test_teardown(test_enters_are_combined, rt_spare_teardown),
		cmocka_unit_test(test_enter_batch_ids),
		L(test_lock_all_or_none),
		L(test_lock_release),
		L(test_lock_expiry),
		L(test_lock_bad_arguments),
		L(test_lock_schedules_apart),
	};
	return cmocka_run_group_tests_name("redis.client", tests, NULL, NULL);
}
