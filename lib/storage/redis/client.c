/*
 * The Redis client: a pool of pipelined connections with timeouts,
 * reconnection and the function library (see redis.h).
 *
 * Pipelining: a call takes an idle connection, or opens one while fewer
 * than `pool` are open; once `pool` are open, calls share the least busy
 * one. On a shared connection each call appends its command and waits for
 * its reply in order: whoever finds no thread reading reads for everyone
 * and hands each reply to its caller, and when its own reply has come it
 * passes the reading on to the oldest caller still waiting. Redis then gets
 * several commands per read() and answers them with one write(), which is
 * most of its cost per command; a lone caller still writes, reads and
 * returns as on a private connection. Each command is still one command
 * with its own reply: nothing is batched into a transaction.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "storage/redis/redis.h"

/* Replies a reader hands out per pass before it looks at the queue again. */
#define READ_BATCH 64

/* One command on a connection, from its writing to its reply. */
typedef struct request {
	struct request *next;
	redisReply *reply;       /* NULL if the connection failed first */
	int done;
	pthread_cond_t wake;     /* done, or it is this caller's turn to read */
} request;

/* Bytes not yet written. */
typedef struct buffer {
	char *data;
	size_t len, cap;
} buffer;

typedef struct conn {
	redisContext *ctx;       /* its reader is used by the reading thread only */
	int users;               /* callers on it; under the client's lock */
	int checking;            /* being checked for staleness; under the client's lock */
	_Atomic int broken;      /* failed: takes no more commands; closed once unused */

	pthread_mutex_t lock;    /* everything below */
	request *head, *tail;    /* commands written or queued, awaiting replies, in order */
	buffer out, spare;       /* out: queued bytes; spare: the writer's last buffer */
	int reading, writing;    /* a thread is in read() / write() for everyone */
	char why[160];           /* why it broke */
} conn;

struct redis_client {
	redis_uri uri;
	concert_backend_env env;
	char where[128];                 /* "redis 127.0.0.1:6379" for messages */
	char *library;                   /* the FUNCTION LOAD text */
	char functions[REDIS_FN_COUNT][48];

	pthread_mutex_t lock;
	pthread_cond_t changed;          /* a connection was opened, failed or closed */
	conn **conns;                    /* open connections, uri.pool slots */
	int conn_count;
	int opening;                     /* connections being opened */
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

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

const char *redis_client_prefix(const redis_client *c)
{
	return c->uri.prefix;
}

/* --- up and down ------------------------------------------------------------ */

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

/* --- connecting --------------------------------------------------------------- */

/* A command on a fresh, still private connection; 0 if the reply is not an error. */
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

static int conn_open(redis_client *c, conn **out)
{
	conn *k = calloc(1, sizeof(*k));
	if (!k)
		return concert_sys_error(CONCERT_ENOMEM, "cannot allocate a redis connection");
	struct timeval connect_tv = ms_timeval(c->uri.connect_timeout_ms);
	redisContext *ctx = c->uri.path ? redisConnectUnixWithTimeout(c->uri.path, connect_tv)
					: redisConnectWithTimeout(c->uri.host, c->uri.port, connect_tv);
	if (!ctx) {
		free(k);
		return concert_sys_error(CONCERT_ENOMEM, "cannot allocate a redis connection");
	}
	char why[128] = "";
	int failed = ctx->err != 0;
	if (failed)
		snprintf(why, sizeof(why), "connect: %.110s", ctx->errstr);
	/* Both directions: a server that stops reading fails the write too. */
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
		free(k);
		return mark_down(c, why);
	}
	k->ctx = ctx;
	pthread_mutex_init(&k->lock, NULL);
	mark_up(c);
	*out = k;
	return 0;
}

static void conn_free(conn *k)
{
	redisFree(k->ctx);
	free(k->out.data);
	free(k->spare.data);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

/*
 * An idle connection has nothing to read: if its socket is readable, the
 * server closed it (a restart) or it is out of step, so it must not be used.
 * This costs a poll(), not a round trip, and spares the first call after a
 * Redis restart a needless failure.
 */
static int conn_stale(const conn *k)
{
	struct pollfd p = { .fd = k->ctx->fd, .events = POLLIN };
	return poll(&p, 1, 0) != 0;
}

/* --- the pool ---------------------------------------------------------------- */

static void conn_remove(redis_client *c, conn *k)
{
	for (int i = 0; i < c->conn_count; i++)
		if (c->conns[i] == k) {
			c->conns[i] = c->conns[--c->conn_count];
			break;
		}
	pthread_cond_broadcast(&c->changed);
}

/* Done with a connection; the last user of a broken one closes it. */
static void conn_release(redis_client *c, conn *k)
{
	pthread_mutex_lock(&c->lock);
	int close_it = --k->users == 0 && atomic_load(&k->broken);
	if (close_it)
		conn_remove(c, k);
	pthread_mutex_unlock(&c->lock);
	if (close_it)
		conn_free(k);
}

/* Opens a connection for the caller (with c->lock held; returns without it). */
static int pool_open(redis_client *c, conn **out)
{
	/*
	 * While Redis is down one thread at a time tries to connect and the
	 * others fail at once, so a server that does not answer SYNs holds one
	 * thread for the connect timeout, not all.
	 */
	if (c->down && c->probing) {
		char why[sizeof(c->last_error)];
		memcpy(why, c->last_error, sizeof(why));
		pthread_mutex_unlock(&c->lock);
		return concert_sys_errorf(CONCERT_EUNAVAILABLE, "%s: %s", c->where, why);
	}
	int probe = c->down;
	c->probing |= probe;
	c->opening++;
	pthread_mutex_unlock(&c->lock);
	conn *k = NULL;
	int rc = conn_open(c, &k);
	pthread_mutex_lock(&c->lock);
	c->opening--;
	if (probe)
		c->probing = 0;
	if (rc == 0) {
		k->users = 1;
		c->conns[c->conn_count++] = k;  /* conn_count + opening <= pool bounds it */
	}
	pthread_cond_broadcast(&c->changed);
	pthread_mutex_unlock(&c->lock);
	*out = k;
	return rc;
}

/*
 * A connection for one command: an idle one (checked for staleness), else a
 * new one while fewer than `pool` are open, else the least busy one, shared.
 */
static int conn_pick(redis_client *c, conn **out)
{
	int64_t deadline = monotonic_ms() + c->uri.timeout_ms;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		conn *idle = NULL, *least = NULL;
		for (int i = c->conn_count - 1; i >= 0 && !idle; i--) {
			conn *k = c->conns[i];
			if (k->checking || atomic_load_explicit(&k->broken, memory_order_relaxed))
				continue;
			if (k->users == 0)
				idle = k;
			else if (!least || k->users < least->users)
				least = k;
		}
		if (idle) {
			/* The check is a syscall: not under the pool's lock. */
			idle->users = 1;
			idle->checking = 1;
			pthread_mutex_unlock(&c->lock);
			int stale = conn_stale(idle);
			pthread_mutex_lock(&c->lock);
			idle->checking = 0;
			if (!stale) {
				pthread_mutex_unlock(&c->lock);
				*out = idle;
				return 0;
			}
			idle->users = 0;
			atomic_store(&idle->broken, 1);
			conn_remove(c, idle);
			pthread_mutex_unlock(&c->lock);
			conn_free(idle);
			pthread_mutex_lock(&c->lock);
			continue;
		}
		if (c->conn_count + c->opening < c->uri.pool)
			return pool_open(c, out);
		if (least) {
			least->users++;
			pthread_mutex_unlock(&c->lock);
			*out = least;
			return 0;
		}
		/* Every slot is being opened (or checked): wait for one. */
		int64_t left = deadline - monotonic_ms();
		if (left <= 0) {
			pthread_mutex_unlock(&c->lock);
			return concert_sys_errorf(CONCERT_EUNAVAILABLE,
				"%s: no connection within %d ms", c->where, c->uri.timeout_ms);
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&c->changed, &c->lock, &ts);
	}
}

/* --- one connection, many callers ------------------------------------------------ */

/*
 * Fails the connection (k->lock held): every command on it is answered
 * with no reply (its outcome is unknown), and a thread blocked reading it
 * is woken by the shutdown.
 */
static void conn_break(conn *k, const char *why)
{
	if (atomic_load(&k->broken))
		return;
	atomic_store(&k->broken, 1);
	concert_sys_strlcpy(k->why, why, sizeof(k->why));
	shutdown(k->ctx->fd, SHUT_RDWR);
	for (request *q = k->head; q; q = q->next) {
		q->done = 1;
		pthread_cond_signal(&q->wake);
	}
	k->head = k->tail = NULL;
	k->out.len = 0;
}

static int buffer_append(buffer *b, const char *data, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + len)
			cap *= 2;
		char *grown = realloc(b->data, cap);
		if (!grown)
			return -1;
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

/* Writes all of `b`; NULL, or why not. */
static const char *write_all(int fd, const buffer *b, int timeout_ms, char *why, size_t why_size)
{
	for (size_t done = 0; done < b->len;) {
		ssize_t n = send(fd, b->data + done, b->len - done, MSG_NOSIGNAL);
		if (n > 0) {
			done += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				snprintf(why, why_size, "could not send for %d ms (outcome unknown)",
					 timeout_ms);
			else
				snprintf(why, why_size, "send: %.100s (outcome unknown)",
					 n < 0 ? strerror(errno) : "nothing written");
			return why;
		}
	}
	return NULL;
}

/*
 * Writes what is queued (k->lock held, released while writing), until
 * nothing is left: commands queued meanwhile go in the same pass.
 */
static void conn_flush(redis_client *c, conn *k)
{
	k->writing = 1;
	while (k->out.len > 0 && !atomic_load(&k->broken)) {
		buffer taken = k->out;
		k->out = k->spare;
		k->out.len = 0;
		k->spare = (buffer){ NULL, 0, 0 };
		pthread_mutex_unlock(&k->lock);
		char why[160];
		const char *failed = write_all(k->ctx->fd, &taken, c->uri.timeout_ms, why, sizeof(why));
		pthread_mutex_lock(&k->lock);
		k->spare = taken;
		if (failed)
			conn_break(k, failed);
	}
	k->writing = 0;
}

/*
 * Reads replies for everyone (k->lock held, released while reading): those
 * already buffered, else what one read() brings, and hands them out in
 * order.
 */
static void conn_read(redis_client *c, conn *k)
{
	k->reading = 1;
	pthread_mutex_unlock(&k->lock);
	redisReply *got[READ_BATCH];
	size_t n = 0;
	char why[160] = "";
	for (;;) {
		void *r = NULL;
		if (redisGetReplyFromReader(k->ctx, &r) != REDIS_OK) {
			snprintf(why, sizeof(why), "%.110s", k->ctx->errstr);
			break;
		}
		if (r) {
			got[n++] = r;
			if (n == READ_BATCH)
				break;
			continue;
		}
		if (n > 0)
			break;
		errno = 0;
		if (redisBufferRead(k->ctx) != REDIS_OK) {
			if (k->ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
				snprintf(why, sizeof(why), "no reply within %d ms (outcome unknown)",
					 c->uri.timeout_ms);
			else
				snprintf(why, sizeof(why), "%.110s (outcome unknown)", k->ctx->errstr);
			break;
		}
	}
	pthread_mutex_lock(&k->lock);
	k->reading = 0;
	for (size_t i = 0; i < n; i++) {
		request *q = k->head;
		if (!q) {
			/* The connection broke meanwhile, and its callers were told so. */
			freeReplyObject(got[i]);
			continue;
		}
		k->head = q->next;
		if (!k->head)
			k->tail = NULL;
		q->reply = got[i];
		q->done = 1;
		pthread_cond_signal(&q->wake);
	}
	if (why[0])
		conn_break(k, why);
}

/* Sends one formatted command on `k` and waits for its reply. */
static int conn_request(redis_client *c, conn *k, const char *cmd, size_t len, redisReply **out)
{
	request req = { .next = NULL, .reply = NULL, .done = 0 };
	pthread_cond_init(&req.wake, NULL);
	char why[sizeof(k->why)] = "";
	pthread_mutex_lock(&k->lock);
	if (atomic_load(&k->broken)) {
		memcpy(why, k->why, sizeof(why));
	} else if (buffer_append(&k->out, cmd, len) < 0) {
		pthread_mutex_unlock(&k->lock);
		pthread_cond_destroy(&req.wake);
		return concert_sys_error(CONCERT_ENOMEM, "cannot queue a redis command");
	} else {
		if (k->tail)
			k->tail->next = &req;
		else
			k->head = &req;
		k->tail = &req;
		if (!k->writing)
			conn_flush(c, k);
		while (!req.done) {
			if (k->reading)
				pthread_cond_wait(&req.wake, &k->lock);
			else
				conn_read(c, k);
		}
		/* The oldest caller still waiting reads next. */
		if (!k->reading && k->head)
			pthread_cond_signal(&k->head->wake);
		if (!req.reply)
			memcpy(why, k->why, sizeof(why));
	}
	pthread_mutex_unlock(&k->lock);
	pthread_cond_destroy(&req.wake);
	if (!req.reply)
		return mark_down(c, why);
	*out = req.reply;
	return 0;
}

/* --- commands ---------------------------------------------------------------- */

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

/* One command; *out gets the reply, error replies included. */
static int client_run(redis_client *c, redisReply **out, int argc, const char **argv,
		      const size_t *argvlen)
{
	char *cmd;
	int len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
	if (len < 0)
		return concert_sys_error(CONCERT_ENOMEM, "cannot format a redis command");
	conn *k = NULL;
	int rc = conn_pick(c, &k);
	if (rc == 0) {
		rc = conn_request(c, k, cmd, (size_t)len, out);
		conn_release(c, k);
	}
	redisFreeCommand(cmd);
	return rc;
}

/* Error replies become codes (see redis.h). */
static int reply_or_error(redis_client *c, redisReply **out, int rc, redisReply *r)
{
	if (rc == 0 && r->type == REDIS_REPLY_ERROR) {
		rc = reply_error(c, r);
		freeReplyObject(r);
		r = NULL;
	}
	*out = rc == 0 ? r : NULL;
	return rc;
}

int redis_client_command(redis_client *c, redisReply **out, int argc, const char **argv,
			 const size_t *argvlen)
{
	redisReply *r = NULL;
	int rc = client_run(c, &r, argc, argv, argvlen);
	return reply_or_error(c, out, rc, r);
}

/* FUNCTION LOAD of our library; one loaded meanwhile by another caller is as good. */
static int load_library(redis_client *c)
{
	const char *argv[3] = { "FUNCTION", "LOAD", c->library };
	redisReply *r;
	int rc = client_run(c, &r, 3, argv, NULL);
	if (rc < 0)
		return rc;
	if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "already exists"))
		rc = 0;
	else if (r->type == REDIS_REPLY_ERROR && starts_with(r->str, "ERR unknown command"))
		rc = concert_sys_errorf(CONCERT_EUNAVAILABLE,
			"%s: needs Redis 7.0 or later (FUNCTION LOAD: %.80s)", c->where, r->str);
	else if (r->type == REDIS_REPLY_ERROR)
		rc = reply_error(c, r);
	freeReplyObject(r);
	return rc;
}

int redis_client_fcall(redis_client *c, redisReply **out, int function, int nkeys, int argc,
		       const char **argv, const size_t *argvlen)
{
	*out = NULL;
	if (function < 0 || function >= REDIS_FN_COUNT || argc < nkeys ||
	    argc + 3 > REDIS_CALL_ARGS_MAX)
		return concert_sys_error(CONCERT_EINTERNAL, "redis: bad function call");
	const char *all[REDIS_CALL_ARGS_MAX];
	size_t len[REDIS_CALL_ARGS_MAX];
	char keys[16];
	all[0] = "FCALL";
	all[1] = c->functions[function];
	all[2] = keys;
	len[0] = 5;
	len[1] = strlen(all[1]);
	len[2] = (size_t)snprintf(keys, sizeof(keys), "%d", nkeys);
	for (int i = 0; i < argc; i++) {
		all[i + 3] = argv[i];
		len[i + 3] = argvlen[i];
	}
	redisReply *r = NULL;
	int rc = client_run(c, &r, argc + 3, all, len);
	/* A restarted (or flushed) server forgot the library: load it, once.
	 * Nothing ran, so running the call again is safe. */
	if (rc == 0 && r->type == REDIS_REPLY_ERROR && starts_with(r->str, "ERR Function not found")) {
		freeReplyObject(r);
		r = NULL;
		rc = load_library(c);
		if (rc == 0)
			rc = client_run(c, &r, argc + 3, all, len);
	}
	return reply_or_error(c, out, rc, r);
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

/*
 * The library is named after a hash of its text (FNV-1a): hosts running
 * different versions of this code on one Redis each get their own library
 * and function names instead of replacing each other's.
 */
static int build_library(redis_client *c)
{
	uint64_t hash = UINT64_C(0xcbf29ce484222325);
	for (const char *p = redis_library_body; *p; p++)
		hash = (hash ^ (unsigned char)*p) * UINT64_C(0x100000001b3);
	char name[32];
	snprintf(name, sizeof(name), "concert_%016llx", (unsigned long long)hash);
	for (int i = 0; i < REDIS_FN_COUNT; i++)
		snprintf(c->functions[i], sizeof(c->functions[i]), "%s_%s", name,
			 redis_function_names[i]);
	static const char header[] = "#!lua name=%s\nlocal PREFIX = '%s_'\n";
	size_t size = sizeof(header) + 2 * strlen(name) + strlen(redis_library_body);
	c->library = malloc(size);
	if (!c->library)
		return -1;
	int n = snprintf(c->library, size, header, name, name);
	memcpy(c->library + n, redis_library_body, strlen(redis_library_body) + 1);
	return 0;
}

void redis_client_close(redis_client *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->conn_count; i++)
		conn_free(c->conns[i]);
	free(c->conns);
	free(c->library);
	pthread_cond_destroy(&c->changed);
	pthread_mutex_destroy(&c->lock);
	redis_uri_free(&c->uri);
	free(c);
}

int redis_client_open(redis_client **out, const char *uri, const concert_backend_env *env)
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
	pthread_cond_init(&c->changed, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&c->lock, NULL);
	c->env = *env;
	if (c->uri.path)
		snprintf(c->where, sizeof(c->where), "redis %s", c->uri.path);
	else
		snprintf(c->where, sizeof(c->where), "redis %s:%d", c->uri.host, c->uri.port);
	c->conns = calloc((size_t)c->uri.pool, sizeof(*c->conns));
	if (!c->conns || build_library(c) < 0) {
		redis_client_close(c);
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	}
	/*
	 * Connect now, so a wrong address or password fails here, and load the
	 * library: a server older than 7.0 (no FUNCTION) fails here too.
	 */
	rc = load_library(c);
	if (rc < 0) {
		redis_client_close(c);
		return rc;
	}
	*out = c;
	return 0;
}
