/*
 * bench_memory: throughput of the memory backend through the public API.
 *
 *   bench_memory [--quick] [--json FILE] [--dir DIR] [--only OP]
 *
 * Runs, for the ephemeral store and for the durable one under each fsync
 * policy: hold+release pairs, pays, queue enters, and queue status look-ups
 * with 1,000,000 users waiting, at 1 and 2 threads (each thread on its own
 * schedule and users), plus 16 threads charging and paying concurrently
 * under fsync=always (group commit).
 * Prints a table and writes the figures as JSON. --only runs just the
 * operations whose name contains OP (e.g. "enter", "group"), for profiling.
 * The durable stores' journals go under --dir DIR, or else a scratch
 * directory removed at the end.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <concert.h>

#include "../tests/tmpdir.h"

#define MAX_THREADS 16
#define USER_LEN 24

typedef struct bench_config {
	const char *store;     /* URI */
	const char *label;
	long ops;              /* operations per thread */
	long waiting;          /* tokens waiting for the status run */
} bench_config;

typedef struct worker {
	concert_engine *engine;
	pthread_barrier_t *start;
	int64_t concert_id;
	int64_t schedule_id;
	int index;
	long ops;
	char (*tokens)[CONCERT_TOKEN_MAX + 1];
	char (*users)[USER_LEN];   /* new users to enter, formatted before the clock starts */
	int64_t *holds;
	int failed;
} worker;

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(int rc, const char *what)
{
	fprintf(stderr, "bench: %s: %s (%s)\n", what, concert_strerror(rc), concert_error_last()->message);
	exit(1);
}

static concert_engine *open_engine(const char *store)
{
	concert_options opts = CONCERT_OPTIONS_INIT;
	concert_engine *engine;
	opts.store = store;
	opts.max_active = 1u << 30;
	opts.max_holds_per_user = 1u << 30;
	opts.max_seats_per_user = 1u << 30;
	int rc = concert_engine_open(&engine, &opts);
	if (rc)
		die(rc, "open");
	return engine;
}

static int64_t make_schedule(concert_engine *e, int64_t *concert_id, int seats)
{
	concert_time now = concert_engine_now(e);
	int64_t schedule_id;
	int rc = concert_concert_add(e, concert_id, "bench", now - 1000, now + 86400000LL * 365);
	if (rc == 0)
		rc = concert_schedule_add(e, &schedule_id, *concert_id, now, "hall");
	concert_seat_spec *specs = malloc(sizeof(*specs) * (size_t)seats);
	for (int i = 0; i < seats; i++)
		specs[i] = (concert_seat_spec){ i + 1, 1000, "R" };
	if (rc == 0)
		rc = concert_seats_add(e, schedule_id, specs, (size_t)seats);
	free(specs);
	if (rc)
		die(rc, "catalog");
	return schedule_id;
}

static void admitted_token(concert_engine *e, int64_t concert_id, const char *user, char *token)
{
	concert_queue_status *st;
	int rc = concert_queue_enter(e, &st, user, concert_id);
	if (rc)
		die(rc, "enter");
	concert_queue_status *active;
	rc = concert_queue_status_get(e, &active, st->token);
	if (rc)
		die(rc, "status");
	memcpy(token, active->token, CONCERT_TOKEN_MAX + 1);
	concert_free(active);
	concert_free(st);
}

/* --- the measured loops ---------------------------------------------- */

static void *run_hold_release(void *arg)
{
	worker *w = arg;
	int32_t seats[2] = { 1, 2 };
	pthread_barrier_wait(w->start);
	for (long i = 0; i < w->ops; i++) {
		concert_hold *hold;
		if (concert_hold_seats(w->engine, &hold, w->tokens[0], w->schedule_id, seats, 2) ||
		    concert_hold_release(w->engine, w->tokens[0], hold->id, NULL, 0))
			w->failed = 1;
		concert_free(hold);
	}
	return NULL;
}

static void *run_pay(void *arg)
{
	worker *w = arg;
	pthread_barrier_wait(w->start);
	for (long i = 0; i < w->ops; i++)
		if (concert_pay(w->engine, NULL, w->tokens[i], w->holds[i], NULL))
			w->failed = 1;
	return NULL;
}

static void *run_charge(void *arg)
{
	worker *w = arg;
	char user[32];
	snprintf(user, sizeof(user), "charge-%d", w->index);
	pthread_barrier_wait(w->start);
	for (long i = 0; i < w->ops; i++)
		if (concert_wallet_charge(w->engine, NULL, user, 1, NULL))
			w->failed = 1;
	return NULL;
}

static void *run_enter(void *arg)
{
	worker *w = arg;
	pthread_barrier_wait(w->start);
	for (long i = 0; i < w->ops; i++) {
		concert_queue_status *st;
		if (concert_queue_enter(w->engine, &st, w->users[i], w->concert_id))
			w->failed = 1;
		concert_free(st);
	}
	return NULL;
}

static void *run_status(void *arg)
{
	worker *w = arg;
	uint64_t x = 88172645463325252ULL + (uint64_t)w->index;
	pthread_barrier_wait(w->start);
	for (long i = 0; i < w->ops; i++) {
		concert_queue_status *st;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		if (concert_queue_status_get(w->engine, &st, w->tokens[x % 1024]))
			w->failed = 1;
		concert_free(st);
	}
	return NULL;
}

/* --- set-ups --------------------------------------------------------- */

typedef enum bench_kind { HOLD_RELEASE, PAY, CHARGE, ENTER, STATUS, KIND_COUNT } bench_kind;
static const char *const kind_names[KIND_COUNT] = { "hold+release", "pay", "charge", "queue enter",
	"queue status" };

static void prepare(worker *w, bench_kind kind, const bench_config *cfg)
{
	char user[48];
	concert_engine *e = w->engine;
	switch (kind) {
	case HOLD_RELEASE:
		w->schedule_id = make_schedule(e, &w->concert_id, 2);
		w->tokens = malloc(sizeof(*w->tokens));
		snprintf(user, sizeof(user), "hr-%d", w->index);
		admitted_token(e, w->concert_id, user, w->tokens[0]);
		break;
	case PAY:
		w->schedule_id = make_schedule(e, &w->concert_id, (int)w->ops);
		w->tokens = malloc(sizeof(*w->tokens) * (size_t)w->ops);
		w->holds = malloc(sizeof(*w->holds) * (size_t)w->ops);
		for (long i = 0; i < w->ops; i++) {
			int32_t seat = (int32_t)i + 1;
			concert_hold *hold;
			snprintf(user, sizeof(user), "pay-%d-%ld", w->index, i);
			admitted_token(e, w->concert_id, user, w->tokens[i]);
			int rc = concert_wallet_charge(e, NULL, user, 1000, NULL);
			if (rc == 0)
				rc = concert_hold_seats(e, &hold, w->tokens[i], w->schedule_id, &seat, 1);
			if (rc)
				die(rc, "pay set-up");
			w->holds[i] = hold->id;
			concert_free(hold);
		}
		break;
	case ENTER:
		make_schedule(e, &w->concert_id, 1);
		w->users = malloc(sizeof(*w->users) * (size_t)w->ops);
		if (!w->users)
			die(CONCERT_ENOMEM, "enter set-up");
		for (long i = 0; i < w->ops; i++)
			snprintf(w->users[i], USER_LEN, "e%d-%ld", w->index, i);
		break;
	case STATUS:
		make_schedule(e, &w->concert_id, 1);
		w->tokens = malloc(sizeof(*w->tokens) * 1024);
		for (long i = 0; i < cfg->waiting; i++) {
			concert_queue_status *st;
			snprintf(user, sizeof(user), "s%d-%ld", w->index, i);
			int rc = concert_queue_enter(e, &st, user, w->concert_id);
			if (rc)
				die(rc, "status set-up");
			/* Sample tokens spread over the whole queue. */
			long stride = cfg->waiting / 1024 ? cfg->waiting / 1024 : 1;
			if (i % stride == 0 && i / stride < 1024)
				memcpy(w->tokens[i / stride], st->token, CONCERT_TOKEN_MAX + 1);
			concert_free(st);
		}
		break;
	default:
		break;
	}
}

static double measure(const bench_config *cfg, bench_kind kind, int threads, long ops)
{
	static void *(*const loops[KIND_COUNT])(void *) = { run_hold_release, run_pay, run_charge, run_enter,
		run_status };
	concert_engine *e = open_engine(cfg->store);
	pthread_barrier_t start;
	pthread_t tid[MAX_THREADS];
	worker w[MAX_THREADS];
	pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
	for (int t = 0; t < threads; t++) {
		w[t] = (worker){ .engine = e, .start = &start, .index = t, .ops = ops };
		prepare(&w[t], kind, cfg);
	}
	if (kind == STATUS)
		for (int t = 0; t < threads; t++)
			w[t].ops = cfg->ops; /* the queue sizes above are set-up, not the measure */
	for (int t = 0; t < threads; t++)
		pthread_create(&tid[t], NULL, loops[kind], &w[t]);
	pthread_barrier_wait(&start);
	double t0 = now_seconds();
	long total = 0;
	for (int t = 0; t < threads; t++) {
		pthread_join(tid[t], NULL);
		total += w[t].ops;
		if (w[t].failed) {
			fprintf(stderr, "bench: %s failed (%s)\n", kind_names[kind], concert_error_last()->message);
			exit(1);
		}
	}
	double elapsed = now_seconds() - t0;
	for (int t = 0; t < threads; t++) {
		free(w[t].tokens);
		free(w[t].users);
		free(w[t].holds);
	}
	pthread_barrier_destroy(&start);
	concert_engine_close(e);
	/* Hand the phase's memory back, so the next phase starts from a heap
	 * like a fresh process's, not from the fragments of this one. */
	malloc_trim(0);
	return (double)total / elapsed;
}

/* --- report ------------------------------------------------------------ */

static FILE *json;
static int json_first = 1;
static const char *only;

static int selected(const char *op)
{
	return !only || strstr(op, only);
}

static void report(const char *store, const char *op, int threads, double ops_per_s, double ratio)
{
	printf("%-22s %-14s %2d  %12.0f", store, op, threads, ops_per_s);
	if (ratio > 0)
		printf("   x%.2f", ratio);
	printf("\n");
	if (json) {
		fprintf(json, "%s\n  {\"store\": \"%s\", \"op\": \"%s\", \"threads\": %d, \"ops_per_s\": %.0f",
			json_first ? "" : ",", store, op, threads, ops_per_s);
		if (ratio > 0)
			fprintf(json, ", \"scaling\": %.3f", ratio);
		fprintf(json, "}");
		json_first = 0;
	}
}

static void run_suite(const bench_config *cfg, int with_queue)
{
	for (int k = 0; k < KIND_COUNT; k++) {
		if ((!with_queue && (k == ENTER || k == STATUS)) || !selected(kind_names[k]))
			continue;
		long ops = cfg->ops;
		if (k == PAY && ops > 200000)
			ops = 200000;
		double one = measure(cfg, (bench_kind)k, 1, ops);
		report(cfg->label, kind_names[k], 1, one, 0);
		double two = measure(cfg, (bench_kind)k, 2, ops);
		report(cfg->label, kind_names[k], 2, two, two / one);
	}
}

static char *durable_uri(const char *dir, const char *policy, int n)
{
	char *uri = malloc(4096);
	snprintf(uri, 4096, "memory:%s/run%d?fsync=%s", dir, n, policy);
	return uri;
}

/*
 * Group commit under fsync=always, 16 threads against one (the mean of one
 * thread before and after the 16): charges touch the
 * store's journal only; a pay commits the store's journal and then the
 * queue's (the token's DONE mark), so its threads form a two-stage pipeline.
 */
static void run_group_commit(const char *dir, int *run, int quick)
{
	static const bench_kind kinds[] = { CHARGE, PAY };
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		char op[32];
		snprintf(op, sizeof(op), "%s (group)", kind_names[kinds[k]]);
		if (!selected(op))
			continue;
		/* One thread right before and right after the 16: an fdatasync here
		 * takes 130-250 us depending on the moment, and the base must be
		 * measured on the disk the 16 threads had. */
		double rate[3];
		for (int i = 0; i < 3; i++) {
			char *uri = durable_uri(dir, "always", (*run)++);
			bench_config always = { uri, "memory fsync=always", quick ? 200 : 1000, 0 };
			rate[i] = measure(&always, kinds[k], i == 1 ? 16 : 1, always.ops);
			free(uri);
		}
		double one = (rate[0] + rate[2]) / 2;
		report("memory fsync=always", op, 1, one, 0);
		report("memory fsync=always", op, 16, rate[1], rate[1] / one);
	}
}

int main(int argc, char **argv)
{
	int quick = 0;
	const char *json_path = "bench/results/memory.json";
	const char *dir = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0)
			quick = 1;
		else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
			json_path = argv[++i];
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
			only = argv[++i];
		else {
			fprintf(stderr, "usage: %s [--quick] [--json FILE] [--dir DIR] [--only OP]\n", argv[0]);
			return 2;
		}
	}
	char scratch[256] = "";
	if (!dir) {
		if (tmpdir_make(scratch, sizeof(scratch), "concert-bench") != 0) {
			perror("scratch directory");
			return 1;
		}
		dir = scratch;
	}
	json = fopen(json_path, "w");
	if (json)
		fprintf(json, "{\"bench\": \"memory\", \"version\": \"%s\", \"results\": [", concert_version());

	printf("%-22s %-14s %2s  %12s\n", "store", "operation", "th", "ops/s");
	bench_config ephemeral = { "memory:", "memory (ephemeral)", quick ? 200000 : 2000000,
		quick ? 100000 : 1000000 };
	run_suite(&ephemeral, 1);

	static const char *const policies[] = { "off", "batch", "always" };
	int run = 0;
	for (int p = 0; p < 3; p++) {
		char label[64];
		snprintf(label, sizeof(label), "memory fsync=%s", policies[p]);
		long ops = p == 2 ? (quick ? 500 : 3000) : (quick ? 20000 : 200000);
		char *uri = durable_uri(dir, policies[p], run++);
		bench_config cfg = { uri, label, ops, 0 };
		run_suite(&cfg, 0);
		free(uri);
	}

	run_group_commit(dir, &run, quick);
	if (json) {
		fprintf(json, "\n]}\n");
		fclose(json);
		printf("figures written to %s\n", json_path);
	}
	if (scratch[0] && tmpdir_remove(scratch) != 0)
		fprintf(stderr, "could not remove %s\n", scratch);
	return 0;
}
