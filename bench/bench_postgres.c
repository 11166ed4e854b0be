/*
 * bench_postgres: the PostgreSQL backend through the public API, at several
 * client counts (one thread per client, one engine, a pool of that size).
 *
 *   bench_postgres --uri URI [--clients 1,8,32] [--ops N] [--status-ops N]
 *                  [--pgbench-cmd CMD [--pgbench-seconds S]] [--json FILE]
 *
 * Phases per client count, each timed alone: hold (one seat, a fresh user
 * and token per hold), pay (those holds), queue enter (fresh users), queue
 * status, all through the engine; then "store hold" and "store pay": the
 * store's own statement sent by a plain libpq client (one connection per
 * client, prepared, sessions set up as the library's: generic plans), i.e.
 * the backend's cost without the engine — the like-for-like peer of
 * pgbench's transaction. Round trips per operation are counted by the server itself
 * (pg_stat_statements, when the server loads it): every statement the
 * engine sent during the phase, divided by the operations.
 *
 * The reference: with --pgbench-cmd (pgbench and its connection options,
 * e.g. "pgbench -h 127.0.0.1 -p 5432 -U postgres db"), `CMD -b simple-update
 * -M prepared -c N` runs right before and right after the phases of each
 * client count N on the same server, and their mean is what the ratios are
 * against: on a shared, noisy machine both sides then see the same load.
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
	const char *pgbench_cmd;
	int pgbench_seconds;
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
	double pgbench_before, pgbench_after;
	phase_result hold, pay, enter, status;
	phase_result store_hold, store_pay;   /* the store's statement alone, no engine */
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
	const char *conninfo;     /* STORE_*: libpq straight to the schema */
	int64_t store_concert_id;
	int64_t store_schedule_id;
	PGconn **conns;           /* STORE_*: one per client */
	pthread_barrier_t start;
	_Atomic int failures;
} phase;

typedef struct worker {
	phase *p;
	int index;
} worker;

enum { SETUP, HOLD, PAY, ENTER, STATUS, CHARGE, STORE_HOLD, STORE_PAY };

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

static concert_time wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (concert_time)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The store's own statement, prepared on the client's connection, as the
 * backend sends it: what the backend costs without the engine around it.
 */
static void store_op(phase *p, PGconn *db, long i)
{
	char concert[24], schedule[24], seat[24], now[24], expires[24], hold[24];
	concert_time t = wall_ms();
	snprintf(concert, sizeof(concert), "%lld", (long long)p->store_concert_id);
	snprintf(schedule, sizeof(schedule), "%lld", (long long)p->store_schedule_id);
	snprintf(seat, sizeof(seat), "{%ld}", i + 1);
	snprintf(now, sizeof(now), "%lld", (long long)t);
	snprintf(expires, sizeof(expires), "%lld", (long long)(t + 600000));
	snprintf(hold, sizeof(hold), "%lld", (long long)p->holds[i]);
	PGresult *res;
	if (p->kind == STORE_HOLD) {
		const char *params[] = { p->users[i], concert, schedule, seat, now, expires, "100", "100" };
		res = PQexecPrepared(db, "hold", 8, params, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			p->holds[i] = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	} else {
		const char *params[] = { p->users[i], concert, hold, now };
		res = PQexecPrepared(db, "pay", 4, params, NULL, NULL, 0);
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK && atomic_fetch_add(&p->failures, 1) == 0)
		fprintf(stderr, "bench: store statement: %s", PQerrorMessage(db));
	PQclear(res);
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
	case CHARGE:
		rc = concert_wallet_charge(p->engine, NULL, p->users[i], 1000000, NULL);
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
	for (long k = 0; k < p->per_client; k++) {
		long i = (long)w->index * p->per_client + k;
		if (p->kind >= STORE_HOLD)
			store_op(p, p->conns[w->index], i);
		else
			one_op(p, i);
	}
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
		"AND query NOT LIKE '%pg_stat_statements%' AND query LIKE $1 "
		/* foreign-key checks run inside the server at commit: not round trips */
		"AND query NOT LIKE '%FOR KEY SHARE OF x%'",
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

/*
 * A libpq connection to the URI's database set up as the library sets up
 * its own (lib/storage/postgres/pool.c): the URI's schema first on the
 * search path, generic plans.
 */
static PGconn *store_connect(const char *uri)
{
	char base[1024], schema[80] = "concert";
	snprintf(base, sizeof(base), "%.*s", (int)strcspn(uri, "?"), uri);
	const char *s = strstr(uri, "schema=");
	if (s)
		snprintf(schema, sizeof(schema), "%.*s", (int)strcspn(s + 7, "&"), s + 7);
	PGconn *db = PQconnectdb(base);
	const char *params[] = { schema };
	PQclear(PQexecParams(db, "SELECT set_config('search_path', $1, false), "
			     "set_config('plan_cache_mode', 'force_generic_plan', false)", 1, NULL,
			     params, NULL, NULL, 0));
	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "bench: %s", PQerrorMessage(db));
		exit(1);
	}
	return db;
}

/* --- the reference ------------------------------------------------------------- */

/* pgbench -b simple-update at `clients`; its TPS, or 0 if it did not run. */
static double run_pgbench(const bench_args *a, int clients)
{
	if (!a->pgbench_cmd)
		return 0;
	char cmd[2048];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int threads = clients < cpus ? clients : (int)cpus;
	snprintf(cmd, sizeof(cmd), "%s -b simple-update -M prepared -n -c %d -j %d -T %d 2>/dev/null",
		 a->pgbench_cmd, clients, threads > 0 ? threads : 1, a->pgbench_seconds);
	FILE *p = popen(cmd, "r");
	if (!p)
		return 0;
	char line[512];
	double tps = 0;
	while (fgets(line, sizeof(line), p))
		if (strncmp(line, "tps = ", 6) == 0)
			tps = atof(line + 6);
	pclose(p);
	return tps;
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
	out->pgbench_before = run_pgbench(a, clients);
	out->hold = measure(&p, HOLD, clients, per_client, "%concert_hold_seats%");
	out->pay = measure(&p, PAY, clients, per_client, "%concert_pay%");
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

	/* The same users on a fresh schedule, through the store's SQL alone. */
	rc = concert_concert_add(e, &p.store_concert_id, "bench store", now - 3600000, now + 86400000);
	if (rc == 0)
		rc = concert_schedule_add(e, &p.store_schedule_id, p.store_concert_id, now + 86400000, "hall");
	specs = calloc((size_t)total, sizeof(*specs));
	for (long i = 0; i < total; i++)
		specs[i] = (concert_seat_spec){ (int32_t)i + 1, 1000, "R" };
	if (rc == 0)
		rc = concert_seats_add(e, p.store_schedule_id, specs, (size_t)total);
	free(specs);
	if (rc)
		fail(&p, rc, "setup");
	for (long i = 0; i < total; i++)
		snprintf(p.users[i], sizeof(p.users[i]), "store-%d-%d-%ld", (int)getpid(), run_serial, i);
	run_phase(&p, CHARGE, setup_threads, per_setup);
	p.conns = calloc((size_t)clients, sizeof(*p.conns));
	for (int i = 0; i < clients; i++) {
		p.conns[i] = store_connect(a->uri);
		PQclear(PQprepare(p.conns[i], "hold",
			"SELECT o_hold FROM concert_hold_seats($1, $2, $3, $4, $5, $6, $7, $8, NULL)", 8,
			NULL));
		PQclear(PQprepare(p.conns[i], "pay",
			"SELECT o_payment FROM concert_pay($1, $2, $3, NULL, $4, NULL)", 4, NULL));
	}
	out->store_hold = measure(&p, STORE_HOLD, clients, per_client, "%concert_hold_seats%");
	out->store_pay = measure(&p, STORE_PAY, clients, per_client, "%concert_pay%");
	for (int i = 0; i < clients; i++)
		PQfinish(p.conns[i]);
	free(p.conns);
	out->pgbench_after = run_pgbench(a, clients);
	out->pgbench = (out->pgbench_before + out->pgbench_after) / 2;
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
		"  \"reference\": \"pgbench -b simple-update -M prepared, same server, same clients, "
		"mean of a run before and a run after\",\n"
		"  \"round_trips\": \"statements the server executed (pg_stat_statements) per operation; "
		"the engine's calls, not only the store's\",\n"
		"  \"runs\": [\n", when, a->ops);
	for (int i = 0; i < a->counts; i++) {
		const run_result *r = &runs[i];
		fprintf(f, "    {\n      \"clients\": %d,\n      \"pgbench_simple_update_tps\": %.1f,\n"
			"      \"pgbench_before_after\": [%.1f, %.1f],\n", r->clients, r->pgbench,
			r->pgbench_before, r->pgbench_after);
		json_phase(f, "hold", &r->hold, r->pgbench, 0);
		json_phase(f, "pay", &r->pay, r->pgbench, 0);
		json_phase(f, "queue_enter", &r->enter, r->pgbench, 0);
		json_phase(f, "queue_status", &r->status, r->pgbench, 0);
		json_phase(f, "store_hold", &r->store_hold, r->pgbench, 0);
		json_phase(f, "store_pay", &r->store_pay, r->pgbench, 1);
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

int main(int argc, char **argv)
{
	bench_args a = { NULL, { 1, 8, 32 }, 3, 640, 6400, NULL, 10, NULL };
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
		else if (!strcmp(argv[i], "--pgbench-cmd") && v)
			a.pgbench_cmd = argv[++i];
		else if (!strcmp(argv[i], "--pgbench-seconds") && v)
			a.pgbench_seconds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--json") && v)
			a.json = argv[++i];
		else {
			fprintf(stderr, "usage: bench_postgres --uri URI [--clients 1,8,32] [--ops N] "
					"[--status-ops N] [--pgbench-cmd CMD [--pgbench-seconds S]] "
					"[--json FILE]\n");
			return 2;
		}
	}
	if (!a.uri) {
		fprintf(stderr, "bench_postgres: --uri is required\n");
		return 2;
	}
	stats_connect(a.uri);
	run_result runs[MAX_COUNTS];
	for (int i = 0; i < a.counts; i++) {
		run_count(&a, a.clients[i], &runs[i]);
		const run_result *r = &runs[i];
		printf("%d client%s (pgbench simple-update: %.0f tps; %.0f before, %.0f after)\n",
		       r->clients, r->clients == 1 ? "" : "s", r->pgbench, r->pgbench_before,
		       r->pgbench_after);
		print_row("hold", &r->hold, r->pgbench);
		print_row("pay", &r->pay, r->pgbench);
		print_row("queue enter", &r->enter, r->pgbench);
		print_row("queue status", &r->status, r->pgbench);
		print_row("store hold", &r->store_hold, r->pgbench);
		print_row("store pay", &r->store_pay, r->pgbench);
		fflush(stdout);
	}
	if (a.json)
		write_json(&a, runs);
	PQfinish(stats);
	return 0;
}
#endif
