/*
 * The Redis client: a connection pool with timeouts, reconnection and
 * script loading (see redis.h).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/redis/redis.h"

/* EVALSHA, sha, numkeys, then the keys and arguments. */
#define REDIS_EVAL_ARGS_MAX 80

struct redis_client {
	redis_uri uri;
	concert_backend_env env;
	char where[128];                 /* "redis 127.0.0.1:6379" for messages */
	const redis_script *scripts;
	size_t script_count;
	char (*sha)[41];                 /* written at open, read-only after */

	pthread_mutex_t lock;
	pthread_cond_t freed;            /* a connection was checked in or closed */
	redisContext **idle;             /* uri.pool slots */
	int idle_count;
	int open_count;                  /* idle + checked out */
	int down;                        /* the last attempt failed */
	int probing;                     /* a thread is connecting while down */
	char last_error[128];
};

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval ms_timeval(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	return tv;
}

const char *redis_client_prefix(const redis_client *c)
{
	return c->uri.prefix;
}

/* --- connections ----------------------------------------------------------- */

/* Records that Redis is unreachable; logs the transition once. */
static int mark_down(redis_client *c, const char *why)
{
	pthread_mutex_lock(&c->lock);
	int was_down = c->down;
	c->down = 1;
	concert_sys_strlcpy(c->last_error, why, sizeof(c->last_error));
	pthread_mutex_unlock(&c->lock);
	char line[300];
	snprintf(line, sizeof(line), "%s: %s", c->where, why);
	if (!was_down && c->env.log_level >= CONCERT_LOG_WARN)
		c->env.log(c->env.log_ctx, CONCERT_LOG_WARN, line);
	return concert_sys_error(CONCERT_EUNAVAILABLE, line);
}

static void mark_up(redis_client *c)
{
	pthread_mutex_lock(&c->lock);
	int was_down = c->down;
	c->down = 0;
	pthread_mutex_unlock(&c->lock);
	if (was_down && c->env.log_level >= CONCERT_LOG_INFO) {
		char line[160];
		snprintf(line, sizeof(line), "%s: reconnected", c->where);
		c->env.log(c->env.log_ctx, CONCERT_LOG_INFO, line);
	}
}

/* A command on a fresh connection during setup; 0 if the reply is not an error. */
static int setup_command(redisContext *ctx, char *why, size_t why_size, int argc,
			 const char **argv)
{
	redisReply *r = redisCommandArgv(ctx, argc, argv, NULL);
	if (!r) {
		snprintf(why, why_size, "%s", ctx->errstr);
		return -1;
	}
	int rc = 0;
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(why, why_size, "%s failed: %.100s", argv[0], r->str);
		rc = -1;
	}
	freeReplyObject(r);
	return rc;
}

static int conn_open(redis_client *c, redisContext **out)
{
	struct timeval connect_tv = ms_timeval(c->uri.connect_timeout_ms);
	redisContext *ctx = c->uri.path ? redisConnectUnixWithTimeout(c->uri.path, connect_tv)
					: redisConnectWithTimeout(c->uri.host, c->uri.port, connect_tv);
	if (!ctx)
		return concert_sys_error(CONCERT_ENOMEM, "cannot allocate a redis connection");
	char why[128] = "";
	int failed = ctx->err != 0;
	if (failed)
		snprintf(why, sizeof(why), "connect: %.110s", ctx->errstr);
	if (!failed && redisSetTimeout(ctx, ms_timeval(c->uri.timeout_ms)) != REDIS_OK) {
		snprintf(why, sizeof(why), "cannot set the command timeout");
		failed = 1;
	}
	if (!failed && !c->uri.path)
		redisEnableKeepAlive(ctx);
	if (!failed && c->uri.password) {
		const char *argv[3] = { "AUTH", c->uri.username ? c->uri.username : c->uri.password,
			c->uri.password };
		failed = setup_command(ctx, why, sizeof(why), c->uri.username ? 3 : 2, argv) < 0;
	}
	if (!failed && c->uri.db) {
		char db[16];
		snprintf(db, sizeof(db), "%d", c->uri.db);
		const char *argv[2] = { "SELECT", db };
		failed = setup_command(ctx, why, sizeof(why), 2, argv) < 0;
	}
	if (failed) {
		redisFree(ctx);
		return mark_down(c, why);
	}
	mark_up(c);
	*out = ctx;
	return 0;
}

/*
 * An idle connection has nothing to read: if its socket is readable, the
 * server closed it (a restart) or it is out of step, so it must not be used.
 * This costs a poll(), not a round trip, and spares the first call after a
 * Redis restart a needless failure.
 */
static int conn_stale(const redisContext *ctx)
{
	if (ctx->err)
		return 1;
	struct pollfd p = { .fd = ctx->fd, .events = POLLIN };
	return poll(&p, 1, 0) != 0;
}

static int conn_get(redis_client *c, redisContext **out)
{
	int64_t deadline = monotonic_ms() + c->uri.timeout_ms;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		if (c->idle_count > 0) {
			/* The check is a syscall: not under the pool's lock. */
			redisContext *ctx = c->idle[--c->idle_count];
			pthread_mutex_unlock(&c->lock);
			if (!conn_stale(ctx)) {
				*out = ctx;
				return 0;
			}
			redisFree(ctx);
			pthread_mutex_lock(&c->lock);
			c->open_count--;
			continue;
		}
		if (c->open_count < c->uri.pool) {
			/*
			 * While Redis is down one thread at a time tries to connect and
			 * the others fail at once, so a server that does not answer
			 * SYNs holds one thread for the connect timeout, not all.
			 */
			if (c->down && c->probing) {
				char why[sizeof(c->last_error)];
				memcpy(why, c->last_error, sizeof(why));
				pthread_mutex_unlock(&c->lock);
				return concert_sys_errorf(CONCERT_EUNAVAILABLE, "%s: %s", c->where, why);
			}
			int probe = c->down;
			c->probing |= probe;
			c->open_count++;
			pthread_mutex_unlock(&c->lock);
			int rc = conn_open(c, out);
			pthread_mutex_lock(&c->lock);
			if (probe)
				c->probing = 0;
			if (rc < 0) {
				c->open_count--;
				pthread_cond_signal(&c->freed);
			}
			pthread_mutex_unlock(&c->lock);
			return rc;
		}
		int64_t left = deadline - monotonic_ms();
		if (left <= 0) {
			pthread_mutex_unlock(&c->lock);
			return concert_sys_errorf(CONCERT_EUNAVAILABLE,
				"%s: all %d connections busy for %d ms (raise pool=)", c->where,
				c->uri.pool, c->uri.timeout_ms);
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&c->freed, &c->lock, &ts);
	}
}

/* Checks a connection back in; one that failed is closed instead. */
static void conn_put(redis_client *c, redisContext *ctx)
{
	int broken = ctx->err != 0;
	pthread_mutex_lock(&c->lock);
	if (broken)
		c->open_count--;
	else
		c->idle[c->idle_count++] = ctx;  /* open_count <= pool bounds it */
	pthread_cond_signal(&c->freed);
	pthread_mutex_unlock(&c->lock);
	if (broken)
		redisFree(ctx);
}

/* --- commands ---------------------------------------------------------------- */

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* A Redis error reply as a CONCERT_E* code. */
static int reply_error(redis_client *c, const redisReply *r)
{
	static const char *const transient[] = { "LOADING", "BUSY", "READONLY", "OOM", "MASTERDOWN",
		"TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "NOAUTH", "WRONGPASS", "MOVED", "ASK" };
	for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++)
		if (starts_with(r->str, transient[i]))
			return concert_sys_errorf(CONCERT_EUNAVAILABLE, "%s: %s", c->where, r->str);
	return concert_sys_errorf(CONCERT_EINTERNAL, "%s: %s", c->where, r->str);
}

/* One command on a checked-out connection. */
static int conn_command(redis_client *c, redisContext *ctx, redisReply **out, int argc,
			const char **argv, const size_t *argvlen)
{
	errno = 0;
	redisReply *r = redisCommandArgv(ctx, argc, argv, argvlen);
	if (!r) {
		char why[160];
		if (ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
			snprintf(why, sizeof(why), "no reply within %d ms (outcome unknown)",
				 c->uri.timeout_ms);
		else
			snprintf(why, sizeof(why), "%.110s (outcome unknown)", ctx->errstr);
		if (!ctx->err)
			ctx->err = REDIS_ERR_OTHER;
		return mark_down(c, why);
	}
	*out = r;
	return 0;
}

int redis_client_command(redis_client *c, redisReply **out, int argc, const char **argv,
			 const size_t *argvlen)
{
	*out = NULL;
	redisContext *ctx;
	int rc = conn_get(c, &ctx);
	if (rc < 0)
		return rc;
	redisReply *r = NULL;
	rc = conn_command(c, ctx, &r, argc, argv, argvlen);
	conn_put(c, ctx);
	if (rc == 0 && r->type == REDIS_REPLY_ERROR) {
		rc = reply_error(c, r);
		freeReplyObject(r);
		r = NULL;
	}
	*out = r;
	return rc;
}

static int load_script(redis_client *c, redisContext *ctx, size_t index, char sha[41])
{
	const char *argv[3] = { "SCRIPT", "LOAD", c->scripts[index].body };
	redisReply *r;
	int rc = conn_command(c, ctx, &r, 3, argv, NULL);
	if (rc < 0)
		return rc;
	if (r->type == REDIS_REPLY_ERROR)
		rc = reply_error(c, r);
	else if (r->type != REDIS_REPLY_STRING || r->len != 40)
		rc = concert_sys_errorf(CONCERT_EINTERNAL, "%s: SCRIPT LOAD %s: unexpected reply",
					c->where, c->scripts[index].name);
	else
		memcpy(sha, r->str, 41);
	freeReplyObject(r);
	return rc;
}

int redis_client_eval(redis_client *c, redisReply **out, size_t index, int nkeys, int argc,
		      const char **argv, const size_t *argvlen)
{
	*out = NULL;
	if (index >= c->script_count || argc < nkeys || argc + 3 > REDIS_EVAL_ARGS_MAX)
		return concert_sys_error(CONCERT_EINTERNAL, "redis: bad script call");
	const char *all[REDIS_EVAL_ARGS_MAX];
	size_t len[REDIS_EVAL_ARGS_MAX];
	char keys[16];
	snprintf(keys, sizeof(keys), "%d", nkeys);
	all[0] = "EVALSHA";
	all[1] = c->sha[index];
	all[2] = keys;
	len[0] = 7;
	len[1] = 40;
	len[2] = strlen(keys);
	for (int i = 0; i < argc; i++) {
		all[i + 3] = argv[i];
		len[i + 3] = argvlen[i];
	}
	redisContext *ctx;
	int rc = conn_get(c, &ctx);
	if (rc < 0)
		return rc;
	redisReply *r = NULL;
	rc = conn_command(c, ctx, &r, argc + 3, all, len);
	/* A restarted (or flushed) server forgot the script: load it, once. */
	if (rc == 0 && r->type == REDIS_REPLY_ERROR && starts_with(r->str, "NOSCRIPT")) {
		freeReplyObject(r);
		r = NULL;
		char sha[41];
		rc = load_script(c, ctx, index, sha);
		if (rc == 0)
			rc = conn_command(c, ctx, &r, argc + 3, all, len);
	}
	conn_put(c, ctx);
	if (rc == 0 && r->type == REDIS_REPLY_ERROR) {
		rc = reply_error(c, r);
		freeReplyObject(r);
		r = NULL;
	}
	*out = r;
	return rc;
}

int redis_client_ping(redis_client *c)
{
	const char *argv[1] = { "PING" };
	redisReply *r;
	int rc = redis_client_command(c, &r, 1, argv, NULL);
	if (rc == 0 && (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0))
		rc = concert_sys_errorf(CONCERT_EUNAVAILABLE, "%s: unexpected PING reply", c->where);
	freeReplyObject(r);
	return rc;
}

/* --- open / close ------------------------------------------------------------ */

void redis_client_close(redis_client *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->idle_count; i++)
		redisFree(c->idle[i]);
	free(c->idle);
	free(c->sha);
	pthread_cond_destroy(&c->freed);
	pthread_mutex_destroy(&c->lock);
	redis_uri_free(&c->uri);
	free(c);
}

int redis_client_open(redis_client **out, const char *uri, const concert_backend_env *env,
		      const redis_script *scripts, size_t script_count)
{
	*out = NULL;
	redis_client *c = calloc(1, sizeof(*c));
	if (!c)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	int rc = redis_uri_parse(&c->uri, uri);
	if (rc < 0) {
		free(c);
		return rc;
	}
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->freed, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&c->lock, NULL);
	c->env = *env;
	c->scripts = scripts;
	c->script_count = script_count;
	if (c->uri.path)
		snprintf(c->where, sizeof(c->where), "redis %s", c->uri.path);
	else
		snprintf(c->where, sizeof(c->where), "redis %s:%d", c->uri.host, c->uri.port);
	c->idle = calloc((size_t)c->uri.pool, sizeof(*c->idle));
	c->sha = calloc(script_count ? script_count : 1, sizeof(*c->sha));
	if (!c->idle || !c->sha) {
		redis_client_close(c);
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	}
	/* One connection now, so a wrong address or password fails at open. */
	redisContext *ctx;
	rc = conn_get(c, &ctx);
	if (rc == 0) {
		for (size_t i = 0; rc == 0 && i < script_count; i++)
			rc = load_script(c, ctx, i, c->sha[i]);
		conn_put(c, ctx);
	}
	if (rc < 0) {
		redis_client_close(c);
		return rc;
	}
	*out = c;
	return 0;
}
