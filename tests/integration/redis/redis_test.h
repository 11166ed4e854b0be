/*
 * Helpers for the Redis integration tests: the servers they run against,
 * a direct hiredis connection for sampling state behind the backend's back,
 * and a store wrapper that counts hold_seats calls (store round trips).
 *
 * Environment (set by tests/servers/redis.cmake):
 *   CONCERT_TEST_REDIS_PORT         the shared test server (fixture)
 *   CONCERT_TEST_REDIS_SPARE_PORT   a port for a server a test restarts itself
 *   CONCERT_TEST_REDIS_SERVER       path of tests/servers/redis.sh
 *   CONCERT_TEST_REDIS_SCRATCH      a directory for such servers' data
 *   CONCERT_TEST_PG_STORE           optional: PostgreSQL store URI (hot seat)
 */
#ifndef CONCERT_TEST_INTEGRATION_REDIS_TEST_H
#define CONCERT_TEST_INTEGRATION_REDIS_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "core/internal.h"

/* An environment variable the test cannot run without (fails the test). */
const char *rt_env(const char *name);
int rt_env_int(const char *name);

/* "redis://127.0.0.1:<port>/0<query>" into buf. */
void rt_uri(char *buf, size_t size, int port, const char *query);

/* Runs tests/servers/redis.sh <cmd> <dir> <port> [aof]; fails the test on error. */
void rt_server(const char *cmd, const char *dir, int port, int aof);

/*
 * The spare server, for a test that needs a server of its own: port
 * CONCERT_TEST_REDIS_SPARE_PORT, data in CONCERT_TEST_REDIS_SCRATCH/<name>
 * (fresh: emptied first; aof: appendonly). Tests using it hold ctest's
 * redis_spare resource lock. Returns its port. rt_spare_dir is its data
 * directory while it runs; rt_spare_teardown, a cmocka teardown, stops it
 * even after a failure.
 */
int rt_spare_start(const char *name, int aof, int fresh);
/* The queue backend opened on the spare server, started fresh without AOF
 * (`query` appended to its URI, or NULL); fails the test if it cannot open.
 * Returns the context; *port is the server's. */
void *rt_spare_queue(const char *name, const char *query, const concert_queue_backend **q,
		     int *port);
const char *rt_spare_dir(void);
int rt_spare_teardown(void **state);

/* The real clock in ms, as the engine's default clock reads it. */
concert_time rt_now(void);
/* Monotonic ms, for deadlines of bounded waits. */
int64_t rt_monotonic_ms(void);
/* Pauses `ms` milliseconds: pacing for pollers, never a race fix. */
void rt_pause_ms(int ms);

/* A hiredis connection to 127.0.0.1:port (NULL while it is down). */
redisContext *rt_redis(int port);
/* An integer command reply, or -1 when the command failed. */
long long rt_redis_int(redisContext *c, const char *fmt, ...);

/* An environment for opening a backend directly: real clock, no log. */
concert_backend_env rt_backend_env(void);

/* A positive id no other run of the tests uses (concerts, schedules). */
int64_t rt_unique_id(void);

/* A process-unique run tag for ids and user names. */
const char *rt_run_tag(void);

/*
 * Registers the "counted" store scheme (once per process, for one base):
 * "counted:<base_uri>" opens the store of base_uri with every method as it
 * is, but counts its hold_seats calls. -1 on failure (no cmocka: safe in a
 * forked child).
 */
int rt_counted_store_register(const char *base_uri);
uint64_t rt_store_holds(void);

#endif
