/*
 * Helpers for the Redis integration tests (see redis_test.h).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/redis/redis_test.h"

extern char **environ;

const char *rt_env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v)
		fail_msg("%s is not set (run through ctest, see tests/servers/redis.cmake)", name);
	return v;
}

int rt_env_int(const char *name)
{
	return atoi(rt_env(name));
}

void rt_uri(char *buf, size_t size, int port, const char *query)
{
	snprintf(buf, size, "redis://127.0.0.1:%d/0%s", port, query ? query : "");
}

void rt_server(const char *cmd, const char *dir, int port, int aof)
{
	char port_text[16];
	snprintf(port_text, sizeof(port_text), "%d", port);
	const char *script = rt_env("CONCERT_TEST_REDIS_SERVER");
	char *argv[] = { "sh", (char *)script, (char *)cmd, (char *)dir, port_text,
		aof ? "aof" : NULL, NULL };
	pid_t pid;
	if (posix_spawnp(&pid, "sh", NULL, NULL, argv, environ) != 0)
		fail_msg("cannot run %s", script);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("redis.sh %s %s %d failed", cmd, dir, port);
}

static char spare_dir[512];

int rt_spare_start(const char *name, int aof, int fresh)
{
	int port = rt_env_int("CONCERT_TEST_REDIS_SPARE_PORT");
	snprintf(spare_dir, sizeof(spare_dir), "%s/%s", rt_env("CONCERT_TEST_REDIS_SCRATCH"), name);
	if (fresh)
		rt_server("reset", spare_dir, port, 0);
	rt_server("start", spare_dir, port, aof);
	return port;
}

void *rt_spare_queue(const char *name, const char *query, const concert_queue_backend **q,
		     int *port)
{
	char uri[160];
	*port = rt_spare_start(name, 0, 1);
	rt_uri(uri, sizeof(uri), *port, query);
	*q = concert_registry_queue(uri);
	assert_non_null(*q);
	concert_backend_env env = rt_backend_env();
	void *ctx = NULL;
	assert_int_equal((*q)->open(&ctx, uri, &env), 0);
	return ctx;
}

const char *rt_spare_dir(void)
{
	return spare_dir;
}

int rt_spare_teardown(void **state)
{
	(void)state;
	if (spare_dir[0])
		rt_server("stop", spare_dir, rt_env_int("CONCERT_TEST_REDIS_SPARE_PORT"), 0);
	spare_dir[0] = '\0';
	return 0;
}

concert_time rt_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (concert_time)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rt_monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rt_pause_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

redisContext *rt_redis(int port)
{
	struct timeval tv = { 1, 0 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
	if (c && c->err) {
		redisFree(c);
		return NULL;
	}
	if (c)
		redisSetTimeout(c, tv);
	return c;
}

long long rt_redis_int(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c, fmt, ap);
	va_end(ap);
	long long v = -1;
	if (r && r->type == REDIS_REPLY_INTEGER)
		v = r->integer;
	if (r)
		freeReplyObject(r);
	return v;
}

static concert_time real_clock(void *ctx)
{
	(void)ctx;
	return rt_now();
}

static void no_log(void *ctx, int level, const char *message)
{
	(void)ctx;
	(void)level;
	(void)message;
}

concert_backend_env rt_backend_env(void)
{
	concert_backend_env env = { CONCERT_BACKEND_ENV_VERSION, real_clock, NULL, no_log, NULL,
		CONCERT_LOG_ERROR };
	return env;
}

static char run_tag[32];
static uint64_t run_random;
static _Atomic uint64_t unique_counter;

static void make_run_tag(void)
{
	unsigned int r = 0;
	int fd = open("/dev/urandom", O_RDONLY);
	if (fd < 0 || read(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		r = (unsigned int)time(NULL);
	if (fd >= 0)
		close(fd);
	run_random = r;
	snprintf(run_tag, sizeof(run_tag), "%08x-%d", r, (int)getpid());
}

const char *rt_run_tag(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, make_run_tag);
	return run_tag;
}

int64_t rt_unique_id(void)
{
	rt_run_tag();
	/* 31 random bits, then a counter: ids stay below 2^53. */
	return (int64_t)(((run_random & 0x7fffffffULL) << 20) + atomic_fetch_add(&unique_counter, 1) + 1);
}

/* --- the counting store -------------------------------------------------------- */

static concert_store_backend counted;
static const concert_store_backend *counted_base;
static _Atomic uint64_t counted_holds;

static int counted_open(void **out_ctx, const char *uri, const concert_backend_env *env)
{
	static const char prefix[] = "counted:";
	if (strncmp(uri, prefix, sizeof(prefix) - 1) != 0)
		return concert_sys_error(CONCERT_EINVAL, "not a counted: URI");
	return counted_base->open(out_ctx, uri + sizeof(prefix) - 1, env);
}

static int counted_hold_seats(void *ctx, concert_hold **out, const concert_hold_request *req)
{
	atomic_fetch_add(&counted_holds, 1);
	return counted_base->hold_seats(ctx, out, req);
}

int rt_counted_store_register(const char *base_uri)
{
	if (counted_base)
		return 0;
	const concert_store_backend *base = concert_registry_store(base_uri);
	if (!base)
		return -1;
	/* The base's own context serves every other method unchanged. */
	counted = *base;
	counted.scheme = "counted";
	counted.open = counted_open;
	counted.hold_seats = counted_hold_seats;
	counted_base = base;
	return concert_sys_store_register(&counted) == 0 ? 0 : -1;
}

uint64_t rt_store_holds(void)
{
	return atomic_load(&counted_holds);
}
