/*
 * The hot seat: 1,000 contenders for one seat, the lock slot on Redis in
 * front of the store, every contender with an ACTIVE token of its own.
 *
 * With CONCERT_TEST_PG_STORE (a PostgreSQL URI) the contenders come from
 * 3 processes (one engine each, as 3 host servers) sharing PostgreSQL and
 * Redis; without it, from 8 threads of one process on the memory store.
 * Each engine's store is wrapped to count hold_seats calls, i.e. store
 * round trips.
 *
 *  - test_hot_seat: exactly one winner, and the store saw at most a handful
 *    of attempts (the lock turned the rest away);
 *  - test_lock_expires_mid_hold: the first contender locks the seat and
 *    stalls before its store call (SIGSTOP of its process; a blocked thread
 *    in the one-process mode) until its lock has expired in Redis; then the
 *    others contend and one wins; then the stalled one resumes and reaches
 *    the store, which must refuse it: still one winner. The engines' clock
 *    is frozen, so holds never expire while the 1 s locks do.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/redis/redis_test.h"

enum { CONTENDERS = 1000, PROCESSES = 3, THREADS = 8, SEAT = 1 };
/* Store attempts allowed for 1,000 contenders behind the lock. */
#define HANDFUL 5
#define WAIT_MS 30000

static const unsigned char secret[] = "hot-seat-test-secret";

/*
 * Checks for code that also runs in forked children, where a cmocka failure
 * would unwind into the child's copy of the test runner: a child exits.
 */
static int in_child;
#define CHECK(cond, ...)                                              \
	do {                                                          \
		if (!(cond)) {                                        \
			if (in_child) {                               \
				fprintf(stderr, __VA_ARGS__);         \
				fputc('\n', stderr);                  \
				_exit(5);                             \
			}                                             \
			fail_msg(__VA_ARGS__);                        \
		}                                                     \
	} while (0)

typedef struct setup {
	const char *store;            /* base store URI */
	int multi_process;
	char lock_uri[512];
	char queue_uri[512];
	int64_t concert_id;
	int64_t schedule_id;
	concert_time frozen;          /* 0: the real clock */
	concert_time hold_ttl;
} setup;

/* What one engine's contenders saw. */
typedef struct outcome {
	uint64_t winners;
	uint64_t unavailable;
	uint64_t other;
	uint64_t store_attempts;
	int64_t last_answer_ms;       /* from the start signal to the last answer */
	int other_code;
} outcome;

static concert_time frozen_clock(void *ctx)
{
	return *(const concert_time *)ctx;
}

static concert_engine *open_engine(setup *s, const char *store, const char *lock)
{
	concert_options o;
	CHECK(concert_options_init(&o, CONCERT_OPTIONS_VERSION) == 0, "options");
	o.store = store;
	o.queue = s->queue_uri;
	o.lock = lock;
	o.secret = secret;
	o.secret_len = sizeof(secret) - 1;
	o.max_active = 2 * CONTENDERS;
	o.hold_ttl = s->hold_ttl;
	o.max_holds_per_user = 1;
	o.max_seats_per_user = 1;
	if (s->frozen) {
		o.clock = frozen_clock;
		o.clock_ctx = &s->frozen;
	}
	concert_engine *e = NULL;
	CHECK(concert_engine_open(&e, &o) == 0, "engine on %s: %s", store,
	      concert_error_last()->message);
	return e;
}

/* Redis URIs with a key prefix of this run: runs never share a seat key. */
static void set_uris(setup *s, const char *tag)
{
	char uri[160];
	rt_uri(uri, sizeof(uri), rt_env_int("CONCERT_TEST_REDIS_PORT"), NULL);
	snprintf(s->queue_uri, sizeof(s->queue_uri), "%s?prefix=hot-%s-%s:&pool=16", uri, tag,
		 rt_run_tag());
	snprintf(s->lock_uri, sizeof(s->lock_uri), "%s?prefix=hot-%s-%s:&pool=16", uri, tag,
		 rt_run_tag());
}

/* The concert, schedule and seat (a memory store lives in one engine only). */
static void make_venue(setup *s, concert_engine *e)
{
	concert_time now = s->frozen ? s->frozen : rt_now();
	char title[64];
	snprintf(title, sizeof(title), "hot seat %s", rt_run_tag());
	assert_int_equal(concert_concert_add(e, &s->concert_id, title, now - 3600000, now + 86400000), 0);
	assert_int_equal(concert_schedule_add(e, &s->schedule_id, s->concert_id, now + 86400000,
					      "hall"), 0);
	concert_seat_spec spec = { SEAT, 100, "VIP" };
	assert_int_equal(concert_seats_add(e, s->schedule_id, &spec, 1), 0);
}

/* --- contenders ------------------------------------------------------------------ */

typedef struct contenders {
	concert_engine *engine;
	int64_t schedule_id;
	char (*tokens)[CONCERT_TOKEN_MAX + 1];
	int count;
	_Atomic int next;
	_Atomic uint64_t winners, unavailable, other;
	_Atomic int other_code;
	int64_t started_ms;
	_Atomic int64_t last_answer_ms;
} contenders;

static void enter_users(contenders *c, int64_t concert_id, const char *tag, int count)
{
	c->tokens = calloc((size_t)count, sizeof(*c->tokens));
	CHECK(c->tokens != NULL, "out of memory");
	c->count = count;
	for (int i = 0; i < count; i++) {
		char user[CONCERT_USER_ID_MAX + 1];
		concert_queue_status *st = NULL;
		snprintf(user, sizeof(user), "hot-%s-%d-%d", tag, (int)getpid(), i);
		CHECK(concert_queue_enter(c->engine, &st, user, concert_id) == 0, "enter: %s",
		      concert_error_last()->message);
		CHECK(st->state == CONCERT_QUEUE_ACTIVE, "a contender is not ACTIVE");
		concert_sys_strlcpy(c->tokens[i], st->token, sizeof(c->tokens[i]));
		concert_free(st);
	}
}

static void *contend_main(void *arg)
{
	contenders *c = arg;
	const int32_t seat = SEAT;
	for (int i; (i = atomic_fetch_add(&c->next, 1)) < c->count;) {
		concert_hold *hold = NULL;
		int rc = concert_hold_seats(c->engine, &hold, c->tokens[i], c->schedule_id, &seat, 1);
		concert_free(hold);
		if (rc == 0) {
			atomic_fetch_add(&c->winners, 1);
		} else if (rc == CONCERT_ESEAT_UNAVAILABLE) {
			atomic_fetch_add(&c->unavailable, 1);
		} else {
			atomic_fetch_add(&c->other, 1);
			atomic_store(&c->other_code, rc);
		}
		int64_t took = rt_monotonic_ms() - c->started_ms;
		if (took > atomic_load(&c->last_answer_ms))
			atomic_store(&c->last_answer_ms, took);
	}
	return NULL;
}

static void contend(contenders *c, int threads, outcome *out)
{
	pthread_t t[THREADS];
	uint64_t before = rt_store_holds();
	c->started_ms = rt_monotonic_ms();
	for (int i = 0; i < threads; i++)
		CHECK(pthread_create(&t[i], NULL, contend_main, c) == 0, "pthread_create");
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	out->winners += atomic_load(&c->winners);
	out->unavailable += atomic_load(&c->unavailable);
	out->other += atomic_load(&c->other);
	if (atomic_load(&c->other))
		out->other_code = atomic_load(&c->other_code);
	out->store_attempts += rt_store_holds() - before;
	if (atomic_load(&c->last_answer_ms) > out->last_answer_ms)
		out->last_answer_ms = atomic_load(&c->last_answer_ms);
	free(c->tokens);
}

static void check_outcome(const outcome *o, int contenders_total, uint64_t most_attempts)
{
	print_message("%d contenders: %llu winner(s), %llu refused, %llu other; %llu store "
		      "attempts; every answer within %lld ms\n", contenders_total,
		      (unsigned long long)o->winners, (unsigned long long)o->unavailable,
		      (unsigned long long)o->other, (unsigned long long)o->store_attempts,
		      (long long)o->last_answer_ms);
	if (o->other)
		fail_msg("%llu contenders failed otherwise, e.g. %s", (unsigned long long)o->other,
			 concert_error_name(o->other_code));
	assert_int_equal(o->winners, 1);
	assert_int_equal(o->winners + o->unavailable, (uint64_t)contenders_total);
	assert_true(o->store_attempts >= 1);
	assert_true(o->store_attempts <= most_attempts);
}

/* --- the stalling lock ------------------------------------------------------------- */

/*
 * "stall:<uri>": the Redis lock, except that the first acquire that succeeds
 * (once armed) stalls before returning, i.e. before the engine's store call.
 */
static concert_lock_backend stall_lock;
static const concert_lock_backend *stall_base;
static _Atomic int stall_armed;
static int stall_by_signal;             /* SIGSTOP the process instead of blocking */
static pthread_mutex_t stall_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stall_cond = PTHREAD_COND_INITIALIZER;
static int stalled, resumed;

static int stall_open(void **out_ctx, const char *uri, const concert_backend_env *env)
{
	return stall_base->open(out_ctx, uri + strlen("stall:"), env);
}

static int stall_acquire(void *ctx, int64_t schedule_id, const int32_t *seat_nos, size_t count,
			 const char *value, concert_time ttl)
{
	int rc = stall_base->acquire(ctx, schedule_id, seat_nos, count, value, ttl);
	if (rc != 0 || !atomic_exchange(&stall_armed, 0))
		return rc;
	if (stall_by_signal) {
		raise(SIGSTOP);
		return rc;
	}
	pthread_mutex_lock(&stall_mutex);
	stalled = 1;
	pthread_cond_broadcast(&stall_cond);
	while (!resumed)
		pthread_cond_wait(&stall_cond, &stall_mutex);
	pthread_mutex_unlock(&stall_mutex);
	return rc;
}

static void stall_register(const char *redis_uri)
{
	if (stall_base)
		return;
	stall_base = concert_registry_lock(redis_uri);
	CHECK(stall_base != NULL, "no lock backend for %s", redis_uri);
	stall_lock = *stall_base;
	stall_lock.scheme = "stall";
	stall_lock.open = stall_open;
	stall_lock.acquire = stall_acquire;
	CHECK(concert_sys_lock_register(&stall_lock) == 0, "cannot register the stall lock");
}

/* Waits (bounded) until the seat's lock key has expired in Redis. */
static void wait_lock_expired(const setup *s, const char *tag)
{
	redisContext *c = rt_redis(rt_env_int("CONCERT_TEST_REDIS_PORT"));
	assert_non_null(c);
	char key[256];
	snprintf(key, sizeof(key), "hot-%s-%s:seat:{%lld}:%d", tag, rt_run_tag(),
		 (long long)s->schedule_id, SEAT);
	int64_t deadline = rt_monotonic_ms() + WAIT_MS;
	int seen = 0;
	for (long long n; (n = rt_redis_int(c, "EXISTS %s", key)) != 0;) {
		assert_int_equal(n, 1);
		seen = 1;
		if (rt_monotonic_ms() > deadline)
			fail_msg("lock %s never expired", key);
		rt_pause_ms(20);
	}
	redisFree(c);
	/* The stalled contender really held the lock before it expired. */
	assert_true(seen);
}

/* --- one process, threads --------------------------------------------------------- */

static void hot_seat_threads(setup *s, int stall)
{
	char store[600], lock[600];
	CHECK(rt_counted_store_register(s->store) == 0, "cannot register the counted store");
	snprintf(store, sizeof(store), "counted:%s", s->store);
	snprintf(lock, sizeof(lock), "%s%s", stall ? "stall:" : "", s->lock_uri);
	concert_engine *e = open_engine(s, store, lock);
	make_venue(s, e);
	outcome o = { 0 };
	if (!stall) {
		contenders c = { .engine = e, .schedule_id = s->schedule_id };
		enter_users(&c, s->concert_id, "t", CONTENDERS);
		contend(&c, THREADS, &o);
		check_outcome(&o, CONTENDERS, HANDFUL);
		concert_engine_close(e);
		return;
	}
	contenders holder = { .engine = e, .schedule_id = s->schedule_id };
	contenders rest = { .engine = e, .schedule_id = s->schedule_id };
	enter_users(&holder, s->concert_id, "h", 1);
	enter_users(&rest, s->concert_id, "r", CONTENDERS - 1);
	outcome held = { 0 };
	pthread_t holder_thread;
	atomic_store(&stall_armed, 1);
	uint64_t store_before = rt_store_holds();
	holder.started_ms = rt_monotonic_ms();
	assert_int_equal(pthread_create(&holder_thread, NULL, contend_main, &holder), 0);
	pthread_mutex_lock(&stall_mutex);
	int64_t deadline = rt_monotonic_ms() + WAIT_MS;
	while (!stalled && rt_monotonic_ms() < deadline) {
		pthread_mutex_unlock(&stall_mutex);
		rt_pause_ms(5);
		pthread_mutex_lock(&stall_mutex);
	}
	int holder_stalled = stalled;
	pthread_mutex_unlock(&stall_mutex);
	assert_true(holder_stalled);
	wait_lock_expired(s, "stall");
	/* The stalled holder has not reached the store yet. */
	assert_int_equal(rt_store_holds(), store_before);
	contend(&rest, THREADS, &o);
	pthread_mutex_lock(&stall_mutex);
	resumed = 1;
	pthread_cond_broadcast(&stall_cond);
	pthread_mutex_unlock(&stall_mutex);
	pthread_join(holder_thread, NULL);
	held.winners = atomic_load(&holder.winners);
	held.unavailable = atomic_load(&holder.unavailable);
	held.other = atomic_load(&holder.other);
	free(holder.tokens);
	print_message("stalled holder: %s\n", held.winners ? "won" : held.unavailable ? "refused by the store" : "failed");
	o.winners += held.winners;
	o.unavailable += held.unavailable;
	o.other += held.other;
	o.store_attempts = rt_store_holds() - store_before;
	/* The others' store attempts are not bounded here: their winner's lock
	 * expires after 1 s too, and latecomers then reach the store. */
	check_outcome(&o, CONTENDERS, CONTENDERS);
	assert_int_equal(held.unavailable, 1);
	concert_engine_close(e);
}

/* --- three processes ---------------------------------------------------------------- */

typedef struct child {
	pid_t pid;
	int to_child;      /* parent writes 'g' (go) */
	int from_child;    /* child writes 'r' (ready), then its outcome */
} child;

/* Children not yet reaped, killed by the teardown if a test fails. */
static pid_t live_children[PROCESSES];

static void child_started(pid_t pid)
{
	for (int i = 0; i < PROCESSES; i++)
		if (!live_children[i]) {
			live_children[i] = pid;
			return;
		}
}

static void child_reaped(pid_t pid)
{
	for (int i = 0; i < PROCESSES; i++)
		if (live_children[i] == pid)
			live_children[i] = 0;
}

static int kill_children(void **state)
{
	(void)state;
	for (int i = 0; i < PROCESSES; i++)
		if (live_children[i]) {
			kill(live_children[i], SIGKILL);
			waitpid(live_children[i], NULL, 0);
			live_children[i] = 0;
		}
	return 0;
}

static void write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			_exit(3);
		p += w;
		n -= (size_t)w;
	}
}

static int read_all(int fd, void *buf, size_t n)
{
	char *p = buf;
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* A child process: one engine, `count` contenders; cmocka is not used here. */
static void child_main(setup *s, int in, int out, int count, int stall, const char *tag)
{
	char store[600], lock[600];
	in_child = 1;
	CHECK(rt_counted_store_register(s->store) == 0, "cannot register the counted store");
	snprintf(store, sizeof(store), "counted:%s", s->store);
	snprintf(lock, sizeof(lock), "%s%s", stall ? "stall:" : "", s->lock_uri);
	if (stall) {
		stall_register(s->lock_uri);
		stall_by_signal = 1;
		atomic_store(&stall_armed, 1);
	}
	concert_engine *e = open_engine(s, store, lock);
	contenders c = { .engine = e, .schedule_id = s->schedule_id };
	enter_users(&c, s->concert_id, tag, count);
	char byte = 'r';
	write_all(out, &byte, 1);
	if (read_all(in, &byte, 1) < 0)
		_exit(4);
	outcome o = { 0 };
	contend(&c, stall ? 1 : THREADS, &o);
	write_all(out, &o, sizeof(o));
	concert_engine_close(e);
	_exit(0);
}

static child spawn(setup *s, int count, int stall, const char *tag)
{
	int down[2], up[2];
	assert_int_equal(pipe(down), 0);
	assert_int_equal(pipe(up), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(down[1]);
		close(up[0]);
		child_main(s, down[0], up[1], count, stall, tag);
	}
	child_started(pid);
	close(down[0]);
	close(up[1]);
	child c = { pid, down[1], up[0] };
	char byte;
	if (read_all(c.from_child, &byte, 1) < 0 || byte != 'r')
		fail_msg("child %d did not get ready", (int)pid);
	return c;
}

static void go(child *c)
{
	char byte = 'g';
	assert_int_equal(write(c->to_child, &byte, 1), 1);
}

static void collect(child *c, outcome *total)
{
	outcome o;
	if (read_all(c->from_child, &o, sizeof(o)) < 0)
		fail_msg("child %d died", (int)c->pid);
	int status = 0;
	assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
	child_reaped(c->pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(c->to_child);
	close(c->from_child);
	total->winners += o.winners;
	total->unavailable += o.unavailable;
	total->other += o.other;
	total->store_attempts += o.store_attempts;
	if (o.other)
		total->other_code = o.other_code;
	if (o.last_answer_ms > total->last_answer_ms)
		total->last_answer_ms = o.last_answer_ms;
}

static void hot_seat_processes(setup *s, int stall)
{
	concert_engine *e = open_engine(s, s->store, NULL);
	make_venue(s, e);
	concert_engine_close(e);
	outcome o = { 0 };
	if (!stall) {
		child kids[PROCESSES];
		for (int i = 0; i < PROCESSES; i++)
			kids[i] = spawn(s, CONTENDERS / PROCESSES + (i < CONTENDERS % PROCESSES), 0, "p");
		for (int i = 0; i < PROCESSES; i++)
			go(&kids[i]);
		for (int i = 0; i < PROCESSES; i++)
			collect(&kids[i], &o);
		check_outcome(&o, CONTENDERS, HANDFUL);
		return;
	}
	child holder = spawn(s, 1, 1, "h");
	child rest[PROCESSES - 1];
	for (int i = 0; i < PROCESSES - 1; i++)
		rest[i] = spawn(s, (CONTENDERS - 1) / 2 + (i < (CONTENDERS - 1) % 2), 0, "r");
	go(&holder);
	int status = 0;
	assert_int_equal(waitpid(holder.pid, &status, WUNTRACED), holder.pid);
	assert_true(WIFSTOPPED(status));
	wait_lock_expired(s, "stall");
	for (int i = 0; i < PROCESSES - 1; i++)
		go(&rest[i]);
	for (int i = 0; i < PROCESSES - 1; i++)
		collect(&rest[i], &o);
	assert_int_equal(o.winners, 1);
	assert_int_equal(kill(holder.pid, SIGCONT), 0);
	outcome held = { 0 };
	collect(&holder, &held);
	print_message("stalled holder: %llu store attempt(s), %s\n",
		      (unsigned long long)held.store_attempts,
		      held.winners ? "won" : held.unavailable ? "refused by the store" : "failed");
	/* It did reach the store, after its lock had expired: the store said no. */
	assert_int_equal(held.store_attempts, 1);
	assert_int_equal(held.unavailable, 1);
	o.winners += held.winners;
	o.unavailable += held.unavailable;
	o.other += held.other;
	o.store_attempts += held.store_attempts;
	check_outcome(&o, CONTENDERS, CONTENDERS);
}

/* --- tests -------------------------------------------------------------------------- */

static void configure(setup *s)
{
	memset(s, 0, sizeof(*s));
	const char *pg = getenv("CONCERT_TEST_PG_STORE");
	s->multi_process = pg && *pg;
	s->store = s->multi_process ? pg : "memory:";
	s->hold_ttl = 5 * 60 * 1000;
	print_message("store %s: %s\n", s->store,
		      s->multi_process ? "3 processes" : "one process, 8 threads "
		      "(set CONCERT_TEST_PG_STORE for 3 processes on PostgreSQL)");
}

static void test_hot_seat(void **state)
{
	(void)state;
	setup s;
	configure(&s);
	set_uris(&s, "seat");
	if (s.multi_process)
		hot_seat_processes(&s, 0);
	else
		hot_seat_threads(&s, 0);
}

static void test_lock_expires_mid_hold(void **state)
{
	(void)state;
	setup s;
	configure(&s);
	s.hold_ttl = 1000;
	s.frozen = rt_now();
	set_uris(&s, "stall");
	stall_register(s.lock_uri);
	if (s.multi_process)
		hot_seat_processes(&s, 1);
	else
		hot_seat_threads(&s, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_hot_seat, kill_children),
		cmocka_unit_test_teardown(test_lock_expires_mid_hold, kill_children),
	};
	return cmocka_run_group_tests_name("redis.hot_seat", tests, NULL, NULL);
}
