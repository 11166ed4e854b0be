/*
 * bench_redis: the Redis backend's queue and lock primitives beside the raw
 * Redis commands they cost, in one run on one server.
 *
 *   bench_redis --port PORT [--host 127.0.0.1] [--clients 1,8,50]
 *               [--seconds S] [--waiting N] [--pool P] [--only OP] [--json FILE]
 *
 * Per client count C (C threads, each one client making one blocking call
 * after another, as a host's worker threads do; one queue and one lock
 * backend context shared by all, with the URI's default pool, 8
 * connections, unless --pool says otherwise: with more callers than
 * connections their commands are pipelined, see lib/storage/redis/client.c):
 *   queue enter     a fresh user each time (the queue grows)
 *   queue status    random tokens of a concert with N (1,000,000) waiting
 *   lock acquire    one seat (SET NX PX) / lock release (compare-and-delete)
 * each measured through the backend's vtable (what the engine calls, one
 * command each: FCALL of a library function, SET NX PX, or for a status
 * with nothing to write an HMGET; concurrent enters share one FCALL, see
 * enter_in_line in lib/storage/redis/queue.c), with Redis's CPU per
 * operation from INFO commandstats, and
 * `redis-benchmark -c C` of EVALSHA of a one-line script (`return 1`) and
 * of `SET key v NX PX 60000` run right before and right after; their mean
 * is the reference. Enter, status and release are functions, so they are
 * set against the one-line script; acquire against SET NX PX.
 *
 * Hot seat: 1,000 contenders (50 threads) for one seat through the engine,
 * with the lock on Redis and without it, on the store of --hot-store (default
 * the memory store; e.g. a PostgreSQL URI) wrapped to count hold_seats
 * calls: store round trips per 1,000 contenders, and the time until every
 * loser had its answer.
 *
 * --only OP runs just the operations whose name contains OP (no hot seat, no
 * JSON), e.g. --only status to profile the server during one phase.
 *
 * Needs the Redis backend (CONCERT_WITH_REDIS=ON); bench/run_redis.sh starts
 * a server and runs this.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/core/internal.h"

#define MAX_CLIENTS 64
#define MAX_COUNTS 8
#define HOT_CONTENDERS 1000
#define HOT_THREADS 50

typedef struct args {
	const char *host;
	int port;
	int clients[MAX_COUNTS];
	int counts;
	double seconds;
	long waiting;
	const char *json;
	const char *hot_store;
	int pool;            /* connections per backend context; 0: the URI's default */
	const char *only;    /* run just the operations whose name contains this */
} args;

/* One operation at one client count, beside its raw reference. */
typedef struct op_result {
	double ops;          /* ops/s through the backend */
	double usec;         /* server CPU per op */
	double raw_ops;      /* redis-benchmark rps, mean of before and after */
	double raw_usec;     /* server CPU per raw command */
} op_result;

enum { ENTER, STATUS, ACQUIRE, RELEASE, OPS };

static const char *const op_names[OPS] = { "queue_enter", "queue_status", "lock_acquire",
	"lock_release" };

typedef struct run_result {
	int clients;
	op_result op[OPS];
} run_result;

typedef struct hot_result {
	uint64_t store_round_trips;
	uint64_t winners;
	double all_answered_ms;
} hot_result;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static concert_time real_clock(void *ctx)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (concert_time)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void no_log(void *ctx, int level, const char *message)
{
	(void)ctx;
	(void)level;
	(void)message;
}

static const concert_backend_env bench_env = { CONCERT_BACKEND_ENV_VERSION, real_clock, NULL,
	no_log, NULL, CONCERT_LOG_ERROR };

static void die(const char *what)
{
	fprintf(stderr, "bench_redis: %s: %s\n", what, concert_error_last()->message);
	exit(1);
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* --- redis-benchmark ------------------------------------------------------------ */

/* The rps of the one test redis-benchmark --csv ran. */
static double redis_benchmark(const args *a, int clients, const char *command)
{
	char cmd[512];
	long n = clients == 1 ? 30000 : 100000;
	snprintf(cmd, sizeof(cmd), "redis-benchmark -h %s -p %d -c %d -n %ld -r 1000000 --csv %s",
		 a->host, a->port, clients, n, command);
	FILE *p = popen(cmd, "r");
	if (!p) {
		perror("redis-benchmark");
		exit(1);
	}
	char line[512];
	double rps = 0;
	while (fgets(line, sizeof(line), p)) {
		/* "<test>","<rps>",... after the header line */
		char *q = strstr(line, "\",\"");
		if (q && strncmp(line, "\"test\"", 6) != 0)
			rps = strtod(q + 3, NULL);
	}
	if (pclose(p) != 0 || rps <= 0) {
		fprintf(stderr, "bench_redis: `%s` failed\n", cmd);
		exit(1);
	}
	return rps;
}

/* calls and usec in INFO commandstats of the commands in a space-separated list
 * ("evalsha", "fcall hmget"), summed. */
typedef struct cmdstat {
	double calls, usec;
} cmdstat;

static cmdstat command_stats(const args *a, const char *command)
{
	char cmd[256], line[512], want[64];
	snprintf(cmd, sizeof(cmd), "redis-cli -h %s -p %d INFO commandstats", a->host, a->port);
	cmdstat st = { 0, 0 };
	FILE *p = popen(cmd, "r");
	while (p && fgets(line, sizeof(line), p)) {
		size_t n = strcspn(line, ":");
		if (strncmp(line, "cmdstat_", 8) != 0 || n <= 8 || n - 8 > 16)
			continue;
		snprintf(want, sizeof(want), " %.*s ", (int)(n - 8), line + 8);
		char list[64];
		snprintf(list, sizeof(list), " %s ", command);
		if (!strstr(list, want))
			continue;
		st.calls += strtod(line + n + strlen(":calls="), NULL);
		const char *u = strstr(line, ",usec=");
		if (u)
			st.usec += strtod(u + 6, NULL);
	}
	if (p)
		pclose(p);
	return st;
}

/* Server CPU per operation between two snapshots (microseconds); ops < 0: per call. */
static double server_usec(cmdstat before, cmdstat after, double ops)
{
	double n = ops < 0 ? after.calls - before.calls : ops;
	return n > 0 ? (after.usec - before.usec) / n : 0;
}

/* A raw command's throughput (rps) and server cost per call. */
typedef struct raw_result {
	double rps, usec;
} raw_result;

static raw_result raw_command(const args *a, int clients, const char *sha, int set_nx)
{
	char evalsha[96];
	snprintf(evalsha, sizeof(evalsha), "EVALSHA %s 0", sha);
	const char *command = set_nx ? "SET bench:raw:__rand_int__ v NX PX 60000" : evalsha;
	cmdstat before = command_stats(a, set_nx ? "set" : "evalsha");
	raw_result r;
	r.rps = redis_benchmark(a, clients, command);
	r.usec = server_usec(before, command_stats(a, set_nx ? "set" : "evalsha"), -1);
	return r;
}

/* --- timed phases ------------------------------------------------------------------ */

typedef struct phase {
	int kind;
	const concert_queue_backend *queue;
	void *queue_ctx;
	const concert_lock_backend *lock;
	void *lock_ctx;
	int64_t concert_id;
	concert_queue_policy policy;
	const int64_t *tokens;     /* STATUS: the waiting tokens */
	long token_count;
	int64_t schedule_base;     /* ACQUIRE/RELEASE: schedule per thread */
	long *acquired;            /* per thread: seats locked in ACQUIRE */
	_Atomic int stop;
	_Atomic int failures;
	long done;                      /* operations of the last phase */
	const char *tag;
} phase;

typedef struct worker {
	phase *p;
	int index;
	long ops;
} worker;

static void *phase_main(void *arg)
{
	worker *w = arg;
	phase *p = w->p;
	uint64_t rng = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)w->index << 32) ^ (uint64_t)getpid();
	int64_t schedule = p->schedule_base + w->index;
	char value[16];
	snprintf(value, sizeof(value), "bench%d", w->index);
	long limit = p->kind == RELEASE ? p->acquired[w->index] : -1;
	while (!atomic_load_explicit(&p->stop, memory_order_relaxed) && (limit < 0 || w->ops < limit)) {
		int rc = 0;
		concert_queue_entry e;
		int32_t seat = (int32_t)(w->ops + 1);
		switch (p->kind) {
		case ENTER: {
			char user[64];
			snprintf(user, sizeof(user), "%s-%d-%ld", p->tag, w->index, w->ops);
			rc = p->queue->enter(p->queue_ctx, &e, user, p->concert_id, &p->policy,
					     real_clock(NULL));
			break;
		}
		case STATUS:
			rc = p->queue->status(p->queue_ctx, &e, p->concert_id,
					      p->tokens[xorshift(&rng) % (uint64_t)p->token_count], 0,
					      &p->policy, real_clock(NULL));
			break;
		case ACQUIRE:
			rc = p->lock->acquire(p->lock_ctx, schedule, &seat, 1, value, 600000);
			break;
		case RELEASE:
			rc = p->lock->release(p->lock_ctx, schedule, &seat, 1, value);
			break;
		}
		if (rc != 0) {
			atomic_fetch_add(&p->failures, 1);
			break;
		}
		w->ops++;
	}
	if (p->kind == ACQUIRE)
		p->acquired[w->index] = w->ops;
	/* A release phase ends with the first thread out of seats: every client is
	 * busy all through it, as redis-benchmark's are, and no tail of fewer
	 * clients drags the rate down. */
	if (p->kind == RELEASE)
		atomic_store(&p->stop, 1);
	return NULL;
}

/* Runs a phase on `clients` threads for `seconds` (RELEASE: see phase_main); ops/s. */
static double run_phase(phase *p, int clients, double seconds)
{
	pthread_t threads[MAX_CLIENTS];
	worker workers[MAX_CLIENTS];
	atomic_store(&p->stop, 0);
	atomic_store(&p->failures, 0);
	double started = now_s();
	for (int i = 0; i < clients; i++) {
		workers[i] = (worker){ p, i, 0 };
		pthread_create(&threads[i], NULL, phase_main, &workers[i]);
	}
	if (p->kind != RELEASE) {
		struct timespec ts = { (time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9) };
		nanosleep(&ts, NULL);
		atomic_store(&p->stop, 1);
	}
	long ops = 0;
	for (int i = 0; i < clients; i++) {
		pthread_join(threads[i], NULL);
		ops += workers[i].ops;
	}
	double took = now_s() - started;
	if (atomic_load(&p->failures)) {
		fprintf(stderr, "bench_redis: %d call(s) failed: %s\n", atomic_load(&p->failures),
			concert_error_last()->message);
		exit(1);
	}
	p->done = ops;
	return (double)ops / took;
}

/* --- 1,000,000 waiting ------------------------------------------------------------- */

typedef struct filler {
	phase *p;
	int64_t *tokens;
	long want;
	_Atomic long next;
	_Atomic int failures;
} filler;

static void *fill_main(void *arg)
{
	filler *f = arg;
	for (long i; (i = atomic_fetch_add(&f->next, 1)) < f->want;) {
		char user[64];
		concert_queue_entry e;
		snprintf(user, sizeof(user), "waiting-%ld", i);
		if (f->p->queue->enter(f->p->queue_ctx, &e, user, f->p->concert_id, &f->p->policy,
				       real_clock(NULL)) != 0) {
			atomic_fetch_add(&f->failures, 1);
			return NULL;
		}
		f->tokens[i] = e.token_id;
	}
	return NULL;
}

static int64_t *fill_waiting(phase *p, long want)
{
	filler f = { p, calloc((size_t)want, sizeof(int64_t)), want, 0, 0 };
	if (!f.tokens)
		die("out of memory");
	pthread_t threads[MAX_CLIENTS];
	double started = now_s();
	for (int i = 0; i < MAX_CLIENTS; i++)
		pthread_create(&threads[i], NULL, fill_main, &f);
	for (int i = 0; i < MAX_CLIENTS; i++)
		pthread_join(threads[i], NULL);
	if (atomic_load(&f.failures))
		die("filling the queue");
	fprintf(stderr, "filled %ld waiting in %.1f s (%.0f enters/s at %d clients)\n", want,
		now_s() - started, (double)want / (now_s() - started), MAX_CLIENTS);
	return f.tokens;
}

/* --- hot seat ------------------------------------------------------------------------- */

static concert_store_backend counted;
static const concert_store_backend *counted_base;
static _Atomic uint64_t store_holds;

static int counted_open(void **out_ctx, const char *uri, const concert_backend_env *env)
{
	return counted_base->open(out_ctx, uri + strlen("counted:"), env);
}

static int counted_hold_seats(void *ctx, concert_hold **out, const concert_hold_request *req)
{
	atomic_fetch_add(&store_holds, 1);
	return counted_base->hold_seats(ctx, out, req);
}

typedef struct hot {
	concert_engine *engine;
	int64_t schedule_id;
	char (*tokens)[CONCERT_TOKEN_MAX + 1];
	_Atomic int next;
	_Atomic uint64_t winners;
	_Atomic int failures;
} hot;

static void *hot_main(void *arg)
{
	hot *h = arg;
	const int32_t seat = 1;
	for (int i; (i = atomic_fetch_add(&h->next, 1)) < HOT_CONTENDERS;) {
		concert_hold *hold = NULL;
		int rc = concert_hold_seats(h->engine, &hold, h->tokens[i], h->schedule_id, &seat, 1);
		concert_free(hold);
		if (rc == 0)
			atomic_fetch_add(&h->winners, 1);
		else if (rc != CONCERT_ESEAT_UNAVAILABLE)
			atomic_fetch_add(&h->failures, 1);
	}
	return NULL;
}

static hot_result hot_seat(const char *store, const char *lock_uri)
{
	static int run;
	concert_options o;
	concert_options_init(&o, CONCERT_OPTIONS_VERSION);
	char counted_uri[600];
	snprintf(counted_uri, sizeof(counted_uri), "counted:%s", store);
	o.store = counted_uri;
	o.queue = "memory:";
	o.lock = lock_uri;
	o.max_active = 2 * HOT_CONTENDERS;
	concert_engine *e;
	if (concert_engine_open(&e, &o) != 0)
		die("hot seat engine");
	concert_time now = real_clock(NULL);
	int64_t concert_id, schedule_id;
	concert_seat_spec spec = { 1, 100, "VIP" };
	char title[64];
	run++;
	snprintf(title, sizeof(title), "hot seat %d-%d", (int)getpid(), run);
	if (concert_concert_add(e, &concert_id, title, now - 1000, now + 86400000) != 0 ||
	    concert_schedule_add(e, &schedule_id, concert_id, now + 86400000, "hall") != 0 ||
	    concert_seats_add(e, schedule_id, &spec, 1) != 0)
		die("hot seat venue");
	hot h = { e, schedule_id, calloc(HOT_CONTENDERS, sizeof(*h.tokens)), 0, 0, 0 };
	for (int i = 0; i < HOT_CONTENDERS; i++) {
		char user[48];
		concert_queue_status *st;
		snprintf(user, sizeof(user), "hot-%d-%d-%d", (int)getpid(), run, i);
		if (concert_queue_enter(e, &st, user, concert_id) != 0)
			die("hot seat enter");
		memcpy(h.tokens[i], st->token, sizeof(h.tokens[i]));
		concert_free(st);
	}
	uint64_t before = atomic_load(&store_holds);
	pthread_t threads[HOT_THREADS];
	double started = now_s();
	for (int i = 0; i < HOT_THREADS; i++)
		pthread_create(&threads[i], NULL, hot_main, &h);
	for (int i = 0; i < HOT_THREADS; i++)
		pthread_join(threads[i], NULL);
	hot_result r = { atomic_load(&store_holds) - before, atomic_load(&h.winners),
		(now_s() - started) * 1000 };
	if (atomic_load(&h.failures) || r.winners != 1) {
		fprintf(stderr, "bench_redis: hot seat: %llu winners, %d failures\n",
			(unsigned long long)r.winners, atomic_load(&h.failures));
		exit(1);
	}
	free(h.tokens);
	concert_engine_close(e);
	return r;
}

/* --- main ----------------------------------------------------------------------------- */

static void parse_args(args *a, int argc, char **argv)
{
	a->host = "127.0.0.1";
	a->port = 0;
	a->clients[0] = 1;
	a->clients[1] = 8;
	a->clients[2] = 50;
	a->counts = 3;
	a->seconds = 3;
	a->waiting = 1000000;
	a->json = NULL;
	a->hot_store = "memory:";
	a->pool = 0;
	a->only = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--host") == 0) {
			a->host = argv[i + 1];
		} else if (strcmp(argv[i], "--port") == 0) {
			a->port = atoi(argv[i + 1]);
		} else if (strcmp(argv[i], "--seconds") == 0) {
			a->seconds = atof(argv[i + 1]);
		} else if (strcmp(argv[i], "--waiting") == 0) {
			a->waiting = atol(argv[i + 1]);
		} else if (strcmp(argv[i], "--json") == 0) {
			a->json = argv[i + 1];
		} else if (strcmp(argv[i], "--pool") == 0) {
			a->pool = atoi(argv[i + 1]);
		} else if (strcmp(argv[i], "--only") == 0) {
			a->only = argv[i + 1];
		} else if (strcmp(argv[i], "--hot-store") == 0) {
			a->hot_store = argv[i + 1];
		} else if (strcmp(argv[i], "--clients") == 0) {
			a->counts = 0;
			for (char *s = argv[i + 1]; *s && a->counts < MAX_COUNTS;) {
				a->clients[a->counts++] = (int)strtol(s, &s, 10);
				if (*s == ',')
					s++;
			}
		} else {
			fprintf(stderr, "bench_redis: unknown option %s\n", argv[i]);
			exit(2);
		}
	}
	for (int i = 0; i < a->counts; i++)
		if (a->clients[i] < 1 || a->clients[i] > MAX_CLIENTS) {
			fprintf(stderr, "bench_redis: clients must be 1..%d\n", MAX_CLIENTS);
			exit(2);
		}
	if (a->only && a->json) {
		fprintf(stderr, "bench_redis: --only makes no JSON report\n");
		exit(2);
	}
	if (!a->port || a->waiting < 1 || a->seconds <= 0) {
		fprintf(stderr, "usage: bench_redis --port PORT [--host H] [--clients 1,8,50] "
				"[--seconds S] [--waiting N] [--pool P] [--only OP] "
				"[--hot-store URI] [--json FILE]\n");
		exit(2);
	}
}

/* --only: the operations whose name contains it; a release needs its acquire. */
static int selected(const args *a, int op)
{
	if (!a->only)
		return 1;
	return strstr(op_names[op], a->only) ||
	       (op == ACQUIRE && strstr(op_names[RELEASE], a->only));
}

static const char *trivial_sha(const args *a)
{
	static char sha[64];
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "redis-cli -h %s -p %d SCRIPT LOAD 'return 1'", a->host, a->port);
	FILE *p = popen(cmd, "r");
	if (!p || !fgets(sha, sizeof(sha), p) || strlen(sha) < 40) {
		fprintf(stderr, "bench_redis: `%s` failed\n", cmd);
		exit(1);
	}
	pclose(p);
	sha[40] = '\0';
	return sha;
}

/* What the backend sends for `op`: a SET NX PX for ACQUIRE, else an FCALL. */
/* The commands an operation sends: a status that changes nothing is an HMGET. */
static const char *engine_command(int op)
{
	return op == ACQUIRE ? "set" : op == STATUS ? "fcall hmget" : "fcall";
}

/* ACQUIRE is set against SET NX PX; the others (functions) against a script. */
static const char *reference_of(int op)
{
	return op == ACQUIRE ? "set_nx_px" : "evalsha";
}

static void write_json(const args *a, const run_result *runs, const hot_result *with_lock,
		       const hot_result *without_lock)
{
	FILE *f = fopen(a->json, "w");
	if (!f) {
		perror(a->json);
		exit(1);
	}
	char date[32];
	time_t t = time(NULL);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	fprintf(f, "{\n  \"bench\": \"redis\",\n  \"date\": \"%s\",\n", date);
	fprintf(f, "  \"seconds_per_phase\": %.1f,\n  \"status_waiting\": %ld,\n", a->seconds,
		a->waiting);
	fprintf(f, "  \"reference\": \"redis-benchmark -c N on the same server, mean of a run right "
		   "before and one right after each phase: EVALSHA of 'return 1' for the functions, "
		   "SET NX PX 60000 for acquire\",\n");
	fprintf(f, "  \"server_usec\": \"Redis CPU per operation from INFO commandstats (fcall; "
		   "status: hmget, and fcall when it has work; acquire: set; enters combined into "
		   "one fcall share its cost), per call for the reference's evalsha or set\",\n");
	if (a->pool > 0)
		fprintf(f, "  \"pool\": %d,\n", a->pool);
	else
		fprintf(f, "  \"pool\": \"the URI's default\",\n");
	fprintf(f, "  \"client_threads\": \"one per client\",\n");
	fprintf(f, "  \"runs\": [\n");
	for (int i = 0; i < a->counts; i++) {
		fprintf(f, "    {\n      \"clients\": %d", runs[i].clients);
		for (int op = 0; op < OPS; op++) {
			const op_result *r = &runs[i].op[op];
			fprintf(f, ",\n      \"%s\": {\"ops_per_s\": %.0f, \"%s_rps\": %.0f, "
				   "\"ratio\": %.3f, \"server_usec\": %.1f, \"%s_server_usec\": %.1f}",
				op_names[op], r->ops, reference_of(op), r->raw_ops, r->ops / r->raw_ops,
				r->usec, reference_of(op), r->raw_usec);
		}
		fprintf(f, "\n    }%s\n", i + 1 < a->counts ? "," : "");
	}
	fprintf(f, "  ],\n  \"hot_seat\": {\n    \"contenders\": %d,\n    \"threads\": %d,\n"
		   "    \"store\": \"%.*s\",\n", HOT_CONTENDERS, HOT_THREADS,
		(int)strcspn(a->hot_store, ":"), a->hot_store);
	fprintf(f, "    \"with_lock\": {\"store_round_trips\": %llu, \"all_answered_ms\": %.1f},\n",
		(unsigned long long)with_lock->store_round_trips, with_lock->all_answered_ms);
	fprintf(f, "    \"without_lock\": {\"store_round_trips\": %llu, \"all_answered_ms\": %.1f}\n",
		(unsigned long long)without_lock->store_round_trips, without_lock->all_answered_ms);
	fprintf(f, "  }\n}\n");
	fclose(f);
}

static void print_runs(const args *a, const run_result *runs)
{
	printf("\nRedis backend through its vtable vs redis-benchmark, same server, same clients\n");
	printf("%-8s %-13s %9s %9s %6s   %-10s %s\n", "clients", "operation", "ops/s", "raw", "ratio",
	       "reference", "server us/op (raw)");
	for (int i = 0; i < a->counts; i++)
		for (int op = 0; op < OPS; op++) {
			const op_result *o = &runs[i].op[op];
			if (!selected(a, op))
				continue;
			printf("%-8d %-13s %9.0f %9.0f %6.2f   %-10s %.1f (%.1f)\n", runs[i].clients,
			       op_names[op], o->ops, o->raw_ops, o->ops / o->raw_ops,
			       op == ACQUIRE ? "SET NX PX" : "EVALSHA", o->usec, o->raw_usec);
		}
	if (selected(a, STATUS))
		printf("(queue_status with %ld waiting)\n", a->waiting);
}

int main(int argc, char **argv)
{
	args a;
	parse_args(&a, argc, argv);
	char uri[256];
	char pool[32] = "";
	if (a.pool > 0)
		snprintf(pool, sizeof(pool), "pool=%d&", a.pool);
	snprintf(uri, sizeof(uri), "redis://%s:%d/0?%stimeout_ms=5000&prefix=bench%d:", a.host,
		 a.port, pool, (int)getpid());
	phase p = { 0 };
	p.queue = concert_registry_queue(uri);
	p.lock = concert_registry_lock(uri);
	if (!p.queue || !p.lock) {
		printf("bench_redis: built without the Redis backend (CONCERT_WITH_REDIS=OFF)\n");
		return 0;
	}
	if (p.queue->open(&p.queue_ctx, uri, &bench_env) != 0)
		die("queue open");
	if (p.lock->open(&p.lock_ctx, uri, &bench_env) != 0)
		die("lock open");
	p.policy = (concert_queue_policy){ 1, 0, 3600000, 3600000 };
	const char *sha = trivial_sha(&a);

	p.concert_id = 1;
	int64_t *waiting = selected(&a, STATUS) ? fill_waiting(&p, a.waiting) : NULL;
	p.tokens = waiting;
	p.token_count = a.waiting;

	run_result runs[MAX_COUNTS];
	long acquired[MAX_CLIENTS];
	p.acquired = acquired;
	char tag[32];
	for (int i = 0; i < a.counts; i++) {
		int c = a.clients[i];
		run_result *r = &runs[i];
		r->clients = c;
		snprintf(tag, sizeof(tag), "enter%d", c);
		p.tag = tag;
		p.schedule_base = 1000 * (i + 1);
		/* Each phase between two runs of its reference: the load of a shared
		 * machine then weighs on both sides alike. */
		for (int op = 0; op < OPS; op++) {
			if (!selected(&a, op))
				continue;
			op_result *o = &r->op[op];
			raw_result before = raw_command(&a, c, sha, op == ACQUIRE);
			p.kind = op;
			p.concert_id = op == ENTER ? 100 + i : 1;
			cmdstat stats = command_stats(&a, engine_command(op));
			o->ops = run_phase(&p, c, a.seconds);
			o->usec = server_usec(stats, command_stats(&a, engine_command(op)),
					      (double)p.done);
			raw_result after = raw_command(&a, c, sha, op == ACQUIRE);
			o->raw_ops = (before.rps + after.rps) / 2;
			o->raw_usec = (before.usec + after.usec) / 2;
		}
	}

	if (a.only) {
		print_runs(&a, runs);
		free(waiting);
		p.queue->close(p.queue_ctx);
		p.lock->close(p.lock_ctx);
		return 0;
	}
	char lock_uri[256];
	snprintf(lock_uri, sizeof(lock_uri), "redis://%s:%d/0?pool=%d&prefix=benchhot%d:", a.host,
		 a.port, HOT_THREADS, (int)getpid());
	counted_base = concert_registry_store(a.hot_store);
	if (!counted_base) {
		fprintf(stderr, "bench_redis: no store backend for %s\n", a.hot_store);
		return 1;
	}
	counted = *counted_base;
	counted.scheme = "counted";
	counted.open = counted_open;
	counted.hold_seats = counted_hold_seats;
	if (concert_sys_store_register(&counted) != 0)
		die("counted store");
	hot_result with_lock = hot_seat(a.hot_store, lock_uri);
	hot_result without_lock = hot_seat(a.hot_store, NULL);

	print_runs(&a, runs);
	printf("\nhot seat, %d contenders on one seat (%d threads, store %.*s):\n", HOT_CONTENDERS,
	       HOT_THREADS, (int)strcspn(a.hot_store, ":"), a.hot_store);
	printf("  with the Redis lock:    %llu store round trips, all answered in %.0f ms\n",
	       (unsigned long long)with_lock.store_round_trips, with_lock.all_answered_ms);
	printf("  without a lock:         %llu store round trips, all answered in %.0f ms\n",
	       (unsigned long long)without_lock.store_round_trips, without_lock.all_answered_ms);
	if (a.json)
		write_json(&a, runs, &with_lock, &without_lock);
	free(waiting);
	p.queue->close(p.queue_ctx);
	p.lock->close(p.lock_ctx);
	return 0;
}
