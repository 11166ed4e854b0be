/*
 * bench_postgres: the PostgreSQL backend through the public API, at several
 * client counts (one thread per client, one engine, a pool of that size).
 *
 *   bench_postgres --uri URI [--clients 1,8,32] [--ops N] [--status-ops N]
 *                  [--pgbench 1=TPS,8=TPS,32=TPS] [--json FILE]
 *
 * Phases per client count, each timed alone: hold (one seat, a fresh user
 * and token per hold), pay (those holds), queue enter (fresh users), queue
 * status. Round trips per operation are counted by the server itself
 * (pg_stat_statements, when the server loads it): every statement the
 * engine sent during the phase, divided by the operations. The --pgbench
 * figures (pgbench -b simple-update TPS on the same server, measured by
 * bench/run_postgres.sh) give the ratios in the table and the JSON.
 */
#define _GNU_SOURCE
#include <stdio.h>

#if !__has_include(<libpq-fe.h>)
int main(void)
{
	printf("bench_postgres: built without libpq (CONCERT_WITH_POSTGRES=OFF)\n");
	return 0;
}
#else

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <concert.h>

#define MAX_CLIENTS 256
#define MAX_COUNTS 8

typedef struct bench_args {
	const char *uri;
	int clients[MAX_COUNTS];
	int counts;
	long ops;          /* holds, pays and enters per client count (total) */
	long status_ops;   /* status reads per client count (total) */
	double pgbench[MAX_COUNTS];
	const char *json;
} bench_args;

typedef struct phase_result {
	double ops_per_s;
	double rt_per_op;        /* all statements sent / operations; < 0 unknown */
	double store_rt_per_op;  /* the operation's own statement / operations */
} phase_result;

typedef struct run_result {
	int clients;
	double pgbench;
	phase_result hold, pay, enter, status;
} run_result;

/* Shared by the worker threads of one phase. */
typedef struct phase {
	concert_engine *engine;
	int64_t concert_id;
	int64_t schedule_id;
	int kind;
	long per_client;
	char (*users)[32];
	char (*tokens)[CONCERT_TOKEN_MAX + 1];
	int64_t *holds;
	pthread_barrier_t start;
	_Atomic int failures;
} phase;

typedef struct worker {
	phase *p;
	int index;
} worker;

enum { SETUP, HOLD, PAY, ENTER, STATUS };

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(struct phase *p, int rc, const char *what)
{
	if (atomic_fetch_add(&p->failures, 1) == 0)
		fprintf(stderr, "bench: %s: %s (%s)\n", what, concert_error_name(rc),
			concert_error_last()->message);
}

static void one_op(phase *p, long i)
{
	concert_queue_status *st = NULL;
	concert_hold *hold = NULL;
	int rc = 0;
	int32_t seat = (int32_t)i + 1;
	switch (p->kind) {
	case SETUP:
		rc = concert_queue_enter(p->engine, &st, p->users[i], p->concert_id);
		if (rc == 0)
			memcpy(p->tokens[i], st->token, sizeof(p->tokens[i]));
		if (rc == 0)
			rc = concert_wallet_charge(p->engine, NULL, p->users[i], 1000000, NULL);
		break;
	case HOLD:
		rc = concert_hold_seats(p->engine, &hold, p->tokens[i], p->schedule_id, &seat, 1);
		if (rc == 0)
			p->holds[i] = hold->id;
		break;
	case PAY:
		rc = concert_pay(p->engine, NULL, p->tokens[i], p->holds[i], NULL);
		break;
	case ENTER:
		rc = concert_queue_enter(p->engine, &st, p->users[i], p->concert_id);
		if (rc == 0)
			memcpy(p->tokens[i], st->token, sizeof(p->tokens[i]));
		break;
	case STATUS:
		rc = concert_queue_status_get(p->engine, &st, p->tokens[i]);
		break;
	}
	if (rc)
		fail(p, rc, "operation");
	concert_free(st);
	concert_free(hold);
}

static void *worker_run(void *arg)
{
	worker *w = arg;
	phase *p = w->p;
	pthread_barrier_wait(&p->start);
	for (long k = 0; k < p->per_client; k++)
		one_op(p, (long)w->index * p->per_client + k);
	return NULL;
}

/* Runs `clients` threads over per_client operations each; returns seconds. */
static double run_phase(phase *p, int kind, int clients, long per_client)
{
	pthread_t threads[MAX_CLIENTS];
	worker workers[MAX_CLIENTS];
	p->kind = kind;
	p->per_client = per_client;
	pthread_barrier_init(&p->start, NULL, (unsigned)clients + 1);
	for (int i = 0; i < clients; i++) {
		workers[i] = (worker){ p, i };
		pthread_create(&threads[i], NULL, worker_run, &workers[i]);
	}
	pthread_barrier_wait(&p->start);
	double t0 = now_seconds();
	for (int i = 0; i < clients; i++)
		pthread_join(threads[i], NULL);
	double elapsed = now_seconds() - t0;
	pthread_barrier_destroy(&p->start);
	if (atomic_load(&p->failures)) {
		fprintf(stderr, "bench: %d failed operations\n", atomic_load(&p->failures));
		exit(1);
	}
	return elapsed;
}

/* --- server-side statement counts -------------------------------------------- */

static PGconn *stats;

static void stats_connect(const char *uri)
{
	char base[1024];
	snprintf(base, sizeof(base), "%.*s", (int)strcspn(uri, "?"), uri);
	stats = PQconnectdb(base);
	if (PQstatus(stats) != CONNECTION_OK) {
		PQfinish(stats);
		stats = NULL;
		return;
	}
	PGresult *res = PQexec(stats, "SELECT pg_stat_statements_reset()");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "bench: no pg_stat_statements: round trips not measured\n");
		PQfinish(stats);
		stats = NULL;
	}
	PQclear(res);
}

static void stats_reset(void)
{
	if (stats)
		PQclear(PQexec(stats, "SELECT pg_stat_statements_reset()"));
}

/* Statements the engine sent since the reset; those whose text has `like`. */
static double stats_calls(const char *like)
{
	if (!stats)
		return -1;
	const char *params[] = { like };
	PGresult *res = PQexecParams(stats,
		"SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
		"WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
		"AND query NOT LIKE '%pg_stat_statements%' AND query LIKE $1",
		1, NULL, params, NULL, NULL, 0);
	double v = PQresultStatus(res) == PGRES_TUPLES_OK ? atof(PQgetvalue(res, 0, 0)) : -1;
	PQclear(res);
	return v;
}

static phase_result measure(phase *p, int kind, int clients, long per_client, const char *own)
{
	stats_reset();
	double seconds = run_phase(p, kind, clients, per_client);
	double ops = (double)clients * (double)per_client;
	phase_result r = { ops / seconds, -1, -1 };
	double all = stats_calls("%"), mine = stats_calls(own);
	if (all >= 0) {
		r.rt_per_op = all / ops;
		r.store_rt_per_op = mine / ops;
	}
	return r;
}

/* --- one client count ----------------------------------------------------------- */

static concert_engine *open_engine(const char *uri, int pool)
{
	static char with_pool[1100];
	snprintf(with_pool, sizeof(with_pool), "%s%cpool=%d", uri, strchr(uri, '?') ? '&' : '?', pool);
	concert_options o = CONCERT_OPTIONS_INIT;
	o.store = with_pool;
	o.queue = with_pool;
	o.max_active = 1u << 30;
	o.max_holds_per_user = 1u << 30;
	o.max_seats_per_user = 1u << 30;
	concert_engine *e = NULL;
	if (concert_engine_open(&e, &o) != 0) {
		fprintf(stderr, "bench: open %s: %s\n", uri, concert_error_last()->message);
		exit(1);
	}
	return e;
}

static void run_count(const bench_args *a, int clients, run_result *out)
{
	static int run_serial;
	int setup_threads = clients < 8 ? 8 : clients;
	long per_client = a->ops / clients, per_setup = (a->ops + setup_threads - 1) / setup_threads;
	long total = per_setup * setup_threads;
	concert_engine *e = open_engine(a->uri, setup_threads);
	phase p;
	memset(&p, 0, sizeof(p));
	p.engine = e;
	p.users = calloc((size_t)total, sizeof(*p.users));
	p.tokens = calloc((size_t)total, sizeof(*p.tokens));
	p.holds = calloc((size_t)total, sizeof(*p.holds));
	concert_time now = concert_engine_now(e);
	int rc = concert_concert_add(e, &p.concert_id, "bench", now - 3600000, now + 86400000);
	if (rc == 0)
		rc = concert_schedule_add(e, &p.schedule_id, p.concert_id, now + 86400000, "hall");
	concert_seat_spec *specs = calloc((size_t)total, sizeof(*specs));
	for (long i = 0; i < total; i++)
		specs[i] = (concert_seat_spec){ (int32_t)i + 1, 1000, "R" };
	if (rc == 0)
		rc = concert_seats_add(e, p.schedule_id, specs, (size_t)total);
	free(specs);
	if (rc)
		fail(&p, rc, "setup");
	run_serial++;
	for (long i = 0; i < total; i++)
		snprintf(p.users[i], sizeof(p.users[i]), "bench-%d-%d-%ld", (int)getpid(), run_serial, i);
	run_phase(&p, SETUP, setup_threads, per_setup);

	out->clients = clients;
	out->hold = measure(&p, HOLD, clients, per_client, "%concert_hold_seats%");
	out->pay = measure(&p, PAY, clients, per_client, "%concert_pay%");
	int64_t pay_concert = p.concert_id;
	rc = concert_concert_add(e, &p.concert_id, "bench queue", now - 3600000, now + 86400000);
	if (rc)
		fail(&p, rc, "setup");
	for (long i = 0; i < total; i++)
		snprintf(p.users[i], sizeof(p.users[i]), "queue-%d-%d-%ld", (int)getpid(), run_serial, i);
	out->enter = measure(&p, ENTER, clients, per_client, "%concert_queue_call%");
	long status_per_client = a->status_ops / clients;
	long rounds = status_per_client / (per_client ? per_client : 1);
	phase_result status = { 0, 0, 0 };
	for (long r = 0; r < (rounds ? rounds : 1); r++) {
		phase_result one = measure(&p, STATUS, clients, per_client, "%concert_queue_call%");
		status.ops_per_s += one.ops_per_s;
		status.rt_per_op = one.rt_per_op;
		status.store_rt_per_op = one.store_rt_per_op;
	}
	status.ops_per_s /= (double)(rounds ? rounds : 1);
	out->status = status;
	(void)pay_concert;
	free(p.users);
	free(p.tokens);
	free(p.holds);
	concert_engine_close(e);
}

/* --- output ----------------------------------------------------------------------- */

static void print_row(const char *name, const phase_result *r, double pgbench)
{
	char ratio[32] = "-";
	if (pgbench > 0)
		snprintf(ratio, sizeof(ratio), "%.2fx", r->ops_per_s / pgbench);
	printf("  %-13s %10.0f ops/s  %7s  round trips/op %4.2f (store op %4.2f)\n", name,
	       r->ops_per_s, ratio, r->rt_per_op, r->store_rt_per_op);
}

static void json_phase(FILE *f, const char *name, const phase_result *r, double pgbench, int last)
{
	fprintf(f, "      \"%s\": {\"ops_per_s\": %.1f, \"vs_pgbench\": %.3f, \"round_trips_per_op\": %.2f, "
		"\"store_round_trips_per_op\": %.2f}%s\n", name, r->ops_per_s,
		pgbench > 0 ? r->ops_per_s / pgbench : 0.0, r->rt_per_op, r->store_rt_per_op,
		last ? "" : ",");
}

static void write_json(const bench_args *a, const run_result *runs)
{
	FILE *f = fopen(a->json, "w");
	if (!f) {
		perror(a->json);
		exit(1);
	}
	time_t t = time(NULL);
	char when[32];
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	fprintf(f, "{\n  \"bench\": \"postgres\",\n  \"date\": \"%s\",\n  \"ops_per_phase\": %ld,\n"
		"  \"reference\": \"pgbench -b simple-update -M prepared, same server, same clients\",\n"
		"  \"runs\": [\n", when, a->ops);
	for (int i = 0; i < a->counts; i++) {
		const run_result *r = &runs[i];
		fprintf(f, "    {\n      \"clients\": %d,\n      \"pgbench_simple_update_tps\": %.1f,\n",
			r->clients, r->pgbench);
		json_phase(f, "hold", &r->hold, r->pgbench, 0);
		json_phase(f, "pay", &r->pay, r->pgbench, 0);
		json_phase(f, "queue_enter", &r->enter, r->pgbench, 0);
		json_phase(f, "queue_status", &r->status, r->pgbench, 1);
		fprintf(f, "    }%s\n", i + 1 < a->counts ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
	fclose(f);
}

static void parse_list(const char *s, bench_args *a)
{
	a->counts = 0;
	for (char *end; *s && a->counts < MAX_COUNTS; s = *end ? end + 1 : end) {
		long n = strtol(s, &end, 10);
		if (end == s || n < 1 || n > MAX_CLIENTS) {
			fprintf(stderr, "bench: bad --clients\n");
			exit(2);
		}
		a->clients[a->counts++] = (int)n;
	}
}

static void parse_pgbench(const char *s, bench_args *a)
{
	for (char *end; *s; s = *end ? end + 1 : end) {
		long c = strtol(s, &end, 10);
		if (*end != '=') {
			fprintf(stderr, "bench: bad --pgbench (want 1=TPS,8=TPS)\n");
			exit(2);
		}
		double tps = strtod(end + 1, &end);
		for (int i = 0; i < a->counts; i++)
			if (a->clients[i] == c)
				a->pgbench[i] = tps;
	}
}

int main(int argc, char **argv)
{
	bench_args a = { NULL, { 1, 8, 32 }, 3, 640, 6400, { 0 }, NULL };
	const char *pgbench = NULL;
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(argv[i], "--uri") && v)
			a.uri = argv[++i];
		else if (!strcmp(argv[i], "--clients") && v)
			parse_list(argv[++i], &a);
		else if (!strcmp(argv[i], "--ops") && v)
			a.ops = atol(argv[++i]);
		else if (!strcmp(argv[i], "--status-ops") && v)
			a.status_ops = atol(argv[++i]);
		else if (!strcmp(argv[i], "--pgbench") && v)
			pgbench = argv[++i];
		else if (!strcmp(argv[i], "--json") && v)
			a.json = argv[++i];
		else {
			fprintf(stderr, "usage: bench_postgres --uri URI [--clients 1,8,32] [--ops N] "
					"[--status-ops N] [--pgbench 1=TPS,...] [--json FILE]\n");
			return 2;
		}
	}
	if (!a.uri) {
		fprintf(stderr, "bench_postgres: --uri is required\n");
		return 2;
	}
	if (pgbench)
		parse_pgbench(pgbench, &a);
	stats_connect(a.uri);
	run_result runs[MAX_COUNTS];
	for (int i = 0; i < a.counts; i++) {
		run_count(&a, a.clients[i], &runs[i]);
		runs[i].pgbench = a.pgbench[i];
		printf("%d client%s (pgbench simple-update: %.0f tps)\n", a.clients[i],
		       a.clients[i] == 1 ? "" : "s", a.pgbench[i]);
		print_row("hold", &runs[i].hold, a.pgbench[i]);
		print_row("pay", &runs[i].pay, a.pgbench[i]);
		print_row("queue enter", &runs[i].enter, a.pgbench[i]);
		print_row("queue status", &runs[i].status, a.pgbench[i]);
		fflush(stdout);
	}
	if (a.json)
		write_json(&a, runs);
	PQfinish(stats);
	return 0;
}
#endif
