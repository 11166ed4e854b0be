/*
 * The PostgreSQL connection pool: URI options, blocking checkout, transparent
 * reconnects, prepared statements per connection, bounded retries, and the
 * mapping from SQLSTATE to CONCERT_E* codes.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/postgres/pg.h"

#define POOL_DEFAULT 4
#define POOL_MAX 256
#define CONNECT_TIMEOUT_DEFAULT "5"
/* Attempts for serialization failures, deadlocks and insert races. */
#define RETRY_MAX 8

static void pool_log(const pg_pool *pool, int level, const char *message)
{
	if (level <= pool->env.log_level)
		pool->env.log(pool->env.log_ctx, level, message);
}

/* --- URI options ---------------------------------------------------------- */

typedef struct uri_options {
	long pool;
	char schema[64];
} uri_options;

static int schema_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > 63 || !(islower((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
			return 0;
	return 1;
}

/* Takes "pool" or "schema" when key names one of ours; 1 if it did, <0 on error. */
static int take_option(uri_options *o, const char *key, size_t key_len, const char *value,
		       size_t value_len)
{
	if (key_len == 4 && memcmp(key, "pool", 4) == 0) {
		char digits[16];
		if (value_len == 0 || value_len >= sizeof(digits))
			return concert_sys_error(CONCERT_EINVAL, "pool= needs a number of connections");
		memcpy(digits, value, value_len);
		digits[value_len] = '\0';
		char *end;
		long n = strtol(digits, &end, 10);
		if (*end || n < 1 || n > POOL_MAX)
			return concert_sys_errorf(CONCERT_EINVAL, "pool= must be 1..%d", POOL_MAX);
		o->pool = n;
		return 1;
	}
	if (key_len == 6 && memcmp(key, "schema", 6) == 0) {
		if (!schema_name_ok(value, value_len))
			return concert_sys_error(CONCERT_EINVAL,
						 "schema= must match [a-z_][a-z0-9_]* (at most 63 bytes)");
		memcpy(o->schema, value, value_len);
		o->schema[value_len] = '\0';
		return 1;
	}
	return 0;
}

/* postgresql://...?a=b&pool=8 -> the URI without our options. */
static int strip_uri(char *uri, uri_options *o)
{
	char *q = strchr(uri, '?');
	if (!q)
		return 0;
	char *out = q + 1, *p = q + 1;
	while (*p) {
		size_t len = strcspn(p, "&");
		size_t key_len = strcspn(p, "=&");
		int taken = 0;
		if (key_len < len)
			taken = take_option(o, p, key_len, p + key_len + 1, len - key_len - 1);
		if (taken < 0)
			return taken;
		if (!taken && len) {
			if (out != q + 1)
				*out++ = '&';
			memmove(out, p, len);
			out += len;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	*out = '\0';
	if (out == q + 1)
		*q = '\0';
	return 0;
}

/* host=x pool=8 dbname='a b' -> the string without our options. */
static int strip_keywords(char *s, uri_options *o)
{
	char *out = s, *p = s;
	while (*p) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		char *start = p;
		while (*p && *p != '=' && !isspace((unsigned char)*p))
			p++;
		size_t key_len = (size_t)(p - start);
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '=')
			return concert_sys_error(CONCERT_EINVAL, "malformed PostgreSQL connection string");
		p++;
		while (isspace((unsigned char)*p))
			p++;
		char *value = p;
		size_t value_len;
		if (*p == '\'') {
			p++;
			while (*p && *p != '\'')
				p += (*p == '\\' && p[1]) ? 2 : 1;
			if (*p != '\'')
				return concert_sys_error(CONCERT_EINVAL, "unterminated quote in connection string");
			p++;
			value_len = (size_t)(p - value);
		} else {
			while (*p && !isspace((unsigned char)*p))
				p++;
			value_len = (size_t)(p - value);
		}
		int taken = take_option(o, start, key_len, value, value_len);
		if (taken < 0)
			return taken;
		if (!taken) {
			if (out != s)
				*out++ = ' ';
			memmove(out, start, (size_t)(p - start));
			out += p - start;
		}
	}
	*out = '\0';
	return 0;
}

static int param_set(char **keywords, char **values, size_t *n, const char *key, const char *value)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(keywords[i], key) == 0)
			return 0;
	keywords[*n] = strdup(key);
	values[*n] = strdup(value);
	if (!keywords[*n] || !values[*n])
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	(*n)++;
	return 0;
}

static int parse_conninfo(pg_pool *pool, const char *uri, uri_options *o)
{
	char *copy = strdup(uri);
	if (!copy)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	int is_uri = strncmp(copy, "postgresql://", 13) == 0 || strncmp(copy, "postgres://", 11) == 0;
	int rc = is_uri ? strip_uri(copy, o) : strip_keywords(copy, o);
	PQconninfoOption *opts = NULL;
	if (rc == 0) {
		char *err = NULL;
		opts = PQconninfoParse(copy, &err);
		if (!opts) {
			rc = concert_sys_errorf(CONCERT_EINVAL, "PostgreSQL URI: %s",
						err ? err : "out of memory");
			PQfreemem(err);
		}
	}
	free(copy);
	if (rc < 0)
		return rc;
	size_t count = 0, n = 0;
	for (PQconninfoOption *opt = opts; opt->keyword; opt++)
		count++;
	pool->keywords = calloc(count + 4, sizeof(char *));
	pool->values = calloc(count + 4, sizeof(char *));
	if (!pool->keywords || !pool->values)
		rc = concert_sys_error(CONCERT_ENOMEM, NULL);
	for (PQconninfoOption *opt = opts; rc == 0 && opt->keyword; opt++)
		if (opt->val && *opt->val)
			rc = param_set(pool->keywords, pool->values, &n, opt->keyword, opt->val);
	if (rc == 0)
		rc = param_set(pool->keywords, pool->values, &n, "connect_timeout", CONNECT_TIMEOUT_DEFAULT);
	if (rc == 0)
		rc = param_set(pool->keywords, pool->values, &n, "client_encoding", "UTF8");
	if (rc == 0)
		rc = param_set(pool->keywords, pool->values, &n, "application_name", "libconcert");
	PQconninfoFree(opts);
	return rc;
}

/* --- connections -------------------------------------------------------------- */

static void quiet_notices(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static int conn_failure(pg_pool *pool, pg_conn *c, const char *what)
{
	char message[256];
	const char *detail = c->conn ? PQerrorMessage(c->conn) : "out of memory";
	snprintf(message, sizeof(message), "PostgreSQL %s: %s", what, detail);
	message[strcspn(message, "\n")] = '\0';
	c->broken = 1;
	pool_log(pool, CONCERT_LOG_WARN, message);
	return concert_sys_error(CONCERT_EUNAVAILABLE, message);
}

/*
 * A fresh session: quiet notices, our schema first on the search path, and
 * generic plans. Every statement we send (and every statement inside the
 * functions) is parameterised by ids and a clock value whose actual values
 * never change the best plan, while re-planning them on every call (what
 * the plan cache does when a custom plan looks cheaper, as with an array
 * parameter) costs more than executing them: forcing generic plans more
 * than doubles a hold's throughput.
 */
static int conn_setup(pg_pool *pool, pg_conn *c)
{
	PQsetNoticeProcessor(c->conn, quiet_notices, NULL);
	const char *params[] = { pool->schema };
	PGresult *res = PQexecParams(c->conn,
		"SELECT set_config('search_path', $1, false), "
		"set_config('plan_cache_mode', 'force_generic_plan', false)",
		1, NULL, params, NULL, NULL, 0);
	int ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	PQclear(res);
	if (!ok)
		return conn_failure(pool, c, "session setup failed");
	c->prepared = 0;
	c->broken = 0;
	return 0;
}

/*
 * An idle connection whose server went away (restart, idle kill) has an EOF
 * or an error waiting on its socket: find out without a round trip, so a
 * call after a restart reconnects first instead of failing.
 */
static int conn_dead(pg_conn *c)
{
	if (PQstatus(c->conn) != CONNECTION_OK)
		return 1;
	struct pollfd pfd = { PQsocket(c->conn), POLLIN, 0 };
	if (pfd.fd < 0)
		return 1;
	if (poll(&pfd, 1, 0) > 0 && (!PQconsumeInput(c->conn) || PQstatus(c->conn) != CONNECTION_OK))
		return 1;
	return 0;
}

static int conn_ready(pg_pool *pool, pg_conn *c)
{
	if (!c->conn) {
		c->conn = PQconnectdbParams((const char *const *)pool->keywords,
					    (const char *const *)pool->values, 0);
		if (!c->conn || PQstatus(c->conn) != CONNECTION_OK)
			return conn_failure(pool, c, "connection failed");
		return conn_setup(pool, c);
	}
	if (!c->broken && !conn_dead(c))
		return 0;
	PQreset(c->conn);
	if (PQstatus(c->conn) != CONNECTION_OK)
		return conn_failure(pool, c, "reconnect failed");
	pool_log(pool, CONCERT_LOG_INFO, "PostgreSQL connection re-established");
	return conn_setup(pool, c);
}

static pg_conn *checkout(pg_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	while (pool->free_count == 0)
		pthread_cond_wait(&pool->freed, &pool->lock);
	pg_conn *c = &pool->conns[pool->free_stack[--pool->free_count]];
	pthread_mutex_unlock(&pool->lock);
	return c;
}

static void checkin(pg_pool *pool, pg_conn *c)
{
	pthread_mutex_lock(&pool->lock);
	pool->free_stack[pool->free_count++] = (size_t)(c - pool->conns);
	pthread_cond_signal(&pool->freed);
	pthread_mutex_unlock(&pool->lock);
}

/* --- errors ---------------------------------------------------------------------- */

static int sqlstate_is(const char *state, const char *want)
{
	return state && strcmp(state, want) == 0;
}

static int retryable(const char *state)
{
	return sqlstate_is(state, "40001") || sqlstate_is(state, "40P01") ||
	       sqlstate_is(state, "23505");
}

/* "3,4,7" -> concert_sys_error_conflicts. */
static int seat_conflicts(const char *detail)
{
	int32_t seats[CONCERT_HOLD_SEATS_MAX];
	size_t n = 0;
	for (const char *p = detail ? detail : ""; *p && n < CONCERT_HOLD_SEATS_MAX;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		seats[n++] = (int32_t)v;
		p = *end == ',' ? end + 1 : end;
	}
	return concert_sys_error_conflicts(seats, n);
}

/* A failed statement's SQLSTATE as a CONCERT_E* code, with its message. */
static int result_error(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *message = primary ? primary : PQresultErrorMessage(res);
	if (state && state[0] == 'C' && state[1] == '9') {
		int code = -atoi(state + 2);
		if (code == CONCERT_ESEAT_UNAVAILABLE)
			return seat_conflicts(PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
		if (code < 0 && code > -CONCERT_ERROR_COUNT)
			return concert_sys_error(code, message);
		return concert_sys_errorf(CONCERT_EINTERNAL, "unknown backend error %s: %s", state, message);
	}
	if (!state)
		return concert_sys_errorf(CONCERT_EUNAVAILABLE, "PostgreSQL: %s", message);
	/* Invalid encoding, over-long or constraint-breaking input: refused. */
	if (sqlstate_is(state, "22021") || sqlstate_is(state, "22P05") ||
	    sqlstate_is(state, "22001") || sqlstate_is(state, "23514") ||
	    sqlstate_is(state, "22P02") || sqlstate_is(state, "54000"))
		return concert_sys_errorf(CONCERT_EINVAL, "refused by PostgreSQL: %s", message);
	if (sqlstate_is(state, "22003"))
		return concert_sys_errorf(CONCERT_EOVERFLOW, "PostgreSQL: %s", message);
	/* Connection, resources, shutdown, recovery. */
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
	    strncmp(state, "57", 2) == 0 || strncmp(state, "58", 2) == 0 ||
	    sqlstate_is(state, "25006"))
		return concert_sys_errorf(CONCERT_EUNAVAILABLE, "PostgreSQL (%s): %s", state, message);
	if (sqlstate_is(state, "40001") || sqlstate_is(state, "40P01"))
		return concert_sys_errorf(CONCERT_EUNAVAILABLE, "PostgreSQL kept aborting (%s): %s",
					  state, message);
	return concert_sys_errorf(CONCERT_EINTERNAL, "PostgreSQL (%s): %s", state, message);
}

/* Short randomised pause before retrying an aborted transaction. */
static void backoff(int attempt)
{
	static _Thread_local unsigned seed;
	if (!seed)
		seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
	long us = (long)(100 << (attempt < 6 ? attempt : 6)) + rand_r(&seed) % 200;
	struct timespec ts = { 0, us * 1000 };
	nanosleep(&ts, NULL);
}

static int prepare(pg_pool *pool, pg_conn *c, pg_stmt stmt)
{
	if (c->prepared & (UINT64_C(1) << stmt))
		return 0;
	int nparams;
	const char *sql = pg_stmt_sql(stmt, &nparams);
	char name[32];
	snprintf(name, sizeof(name), "concert_%d", (int)stmt);
	atomic_fetch_add_explicit(&pool->round_trips, 1, memory_order_relaxed);
	PGresult *res = PQprepare(c->conn, name, sql, nparams, NULL);
	int rc = 0;
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		if (PQstatus(c->conn) != CONNECTION_OK)
			rc = conn_failure(pool, c, "connection lost");
		else
			rc = result_error(res);
	}
	PQclear(res);
	if (rc == 0)
		c->prepared |= UINT64_C(1) << stmt;
	return rc;
}

int pg_exec(pg_pool *pool, pg_stmt stmt, const char *const *params, pg_retry retry,
	    PGresult **out)
{
	*out = NULL;
	int nparams;
	(void)pg_stmt_sql(stmt, &nparams);
	char name[32];
	snprintf(name, sizeof(name), "concert_%d", (int)stmt);
	for (int attempt = 0;; attempt++) {
		pg_conn *c = checkout(pool);
		int rc = conn_ready(pool, c);
		if (rc == 0)
			rc = prepare(pool, c, stmt);
		if (rc < 0) {
			/* Nothing was sent: safe to try once more on a fresh connection. */
			int again = c->broken && attempt == 0;
			checkin(pool, c);
			if (again)
				continue;
			return rc;
		}
		atomic_fetch_add_explicit(&pool->round_trips, 1, memory_order_relaxed);
		PGresult *res = PQexecPrepared(c->conn, name, nparams, params, NULL, NULL, 0);
		ExecStatusType status = PQresultStatus(res);
		if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
			checkin(pool, c);
			*out = res;
			return 0;
		}
		const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		if (PQstatus(c->conn) != CONNECTION_OK || !res) {
			/* In flight: it may or may not have committed. */
			rc = conn_failure(pool, c, "connection lost during a call");
			PQclear(res);
			checkin(pool, c);
			if (retry == PG_REPEATABLE && attempt == 0)
				continue;
			return rc;
		}
		if (retryable(state) && attempt + 1 < RETRY_MAX) {
			PQclear(res);
			checkin(pool, c);
			backoff(attempt);
			continue;
		}
		rc = result_error(res);
		if (rc == CONCERT_EUNAVAILABLE)
			c->broken = 1;
		PQclear(res);
		checkin(pool, c);
		return rc;
	}
}

/* --- open / close -------------------------------------------------------------- */

void pg_pool_close(pg_pool *pool)
{
	if (!pool)
		return;
	for (size_t i = 0; pool->conns && i < pool->size; i++)
		if (pool->conns[i].conn)
			PQfinish(pool->conns[i].conn);
	for (size_t i = 0; pool->keywords && pool->keywords[i]; i++)
		free(pool->keywords[i]);
	for (size_t i = 0; pool->values && pool->values[i]; i++)
		free(pool->values[i]);
	free(pool->keywords);
	free(pool->values);
	free(pool->conns);
	free(pool->free_stack);
	pthread_cond_destroy(&pool->freed);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

int pg_pool_open(pg_pool **out, const char *uri, const concert_backend_env *env)
{
	*out = NULL;
	if (!uri || !env || !env->clock || !env->log)
		return concert_sys_error(CONCERT_EINVAL, "open needs a URI and an environment");
	pg_pool *pool = calloc(1, sizeof(*pool));
	if (!pool)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->freed, NULL);
	pool->env = *env;
	uri_options o = { POOL_DEFAULT, "concert" };
	int rc = parse_conninfo(pool, uri, &o);
	if (rc == 0) {
		memcpy(pool->schema, o.schema, sizeof(pool->schema));
		pool->size = (size_t)o.pool;
		pool->conns = calloc(pool->size, sizeof(*pool->conns));
		pool->free_stack = calloc(pool->size, sizeof(*pool->free_stack));
		if (!pool->conns || !pool->free_stack)
			rc = concert_sys_error(CONCERT_ENOMEM, NULL);
	}
	for (size_t i = 0; rc == 0 && i < pool->size; i++)
		pool->free_stack[pool->free_count++] = pool->size - 1 - i;
	/* Connect one now: a bad URI or an unreachable server fails open. */
	if (rc == 0) {
		pg_conn *c = checkout(pool);
		rc = conn_ready(pool, c);
		if (rc == 0)
			rc = pg_schema_migrate(c->conn, pool->schema);
		checkin(pool, c);
	}
	if (rc < 0) {
		pg_pool_close(pool);
		return rc;
	}
	*out = pool;
	return 0;
}

int pg_pool_same_schema(const pg_pool *a, const pg_pool *b)
{
	if (strcmp(a->schema, b->schema) != 0)
		return 0;
	size_t i = 0;
	for (; a->keywords[i] && b->keywords[i]; i++)
		if (strcmp(a->keywords[i], b->keywords[i]) != 0 || strcmp(a->values[i], b->values[i]) != 0)
			return 0;
	return !a->keywords[i] && !b->keywords[i];
}

/* --- values -------------------------------------------------------------------------- */

int64_t pg_get_int64(const PGresult *res, int row, int col)
{
	const char *v = PQgetvalue(res, row, col);
	return v ? strtoll(v, NULL, 10) : 0;
}

int pg_get_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col);
}

void pg_get_text(char *dst, size_t dst_size, const PGresult *res, int row, int col)
{
	concert_sys_strlcpy(dst, PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col),
			    dst_size);
}

long pg_get_int_array(int32_t *out, size_t max, const PGresult *res, int row, int col)
{
	const char *p = PQgetvalue(res, row, col);
	if (!p || *p++ != '{')
		return -1;
	size_t n = 0;
	while (*p && *p != '}') {
		char *end;
		errno = 0;
		long v = strtol(p, &end, 10);
		if (end == p || errno || v < INT32_MIN || v > INT32_MAX)
			return -1;
		if (out) {
			if (n == max)
				return -1;
			out[n] = (int32_t)v;
		}
		n++;
		p = *end == ',' ? end + 1 : end;
	}
	return *p == '}' ? (long)n : -1;
}

long pg_get_int_array_count(const PGresult *res, int row, int col)
{
	return pg_get_int_array(NULL, 0, res, row, col);
}

const char *pg_param_int(char *buf, int64_t v)
{
	snprintf(buf, PG_INT_BUF, "%" PRId64, v);
	return buf;
}

char *pg_param_int_array(const int32_t *v, size_t count)
{
	char *s = malloc(3 + count * 12);
	if (!s) {
		concert_sys_error(CONCERT_ENOMEM, NULL);
		return NULL;
	}
	size_t len = 0;
	s[len++] = '{';
	for (size_t i = 0; i < count; i++)
		len += (size_t)sprintf(s + len, i ? ",%" PRId32 : "%" PRId32, v[i]);
	s[len++] = '}';
	s[len] = '\0';
	return s;
}
