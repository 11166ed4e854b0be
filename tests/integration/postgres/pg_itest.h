/*
 * PostgreSQL integration tests: shared helpers.
 *
 * The tests run against the server the "postgres" ctest fixture starts
 * (CONCERT_TEST_PG_URI); each run works in a schema of its own, so its
 * invariants can be checked over the whole schema. Time comes from a
 * clock in a shared memory file, so a parent process drives the clock of
 * every child: nothing waits for wall-clock time to pass.
 */
#ifndef CONCERT_TEST_PG_ITEST_H
#define CONCERT_TEST_PG_ITEST_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>

#include "concert.h"

/* A fixed epoch for the driven clocks (2027-01-15). */
#define IT_EPOCH ((concert_time)1800000000000LL)
#define IT_MINUTE ((concert_time)60000)
#define IT_DAY (24 * 60 * IT_MINUTE)

extern int it_failures;

/* Records a failure (thread-safe) and prints it; the run exits 1 at the end. */
void it_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define IT_CHECK(cond, ...)                                         \
	do {                                                        \
		if (!(cond))                                        \
			it_fail(__FILE__, __LINE__, __VA_ARGS__);   \
	} while (0)

/* Checks a libconcert call returned `want`, printing the last error if not. */
#define IT_RC(expr, want)                                                               \
	do {                                                                            \
		int it_rc_ = (expr);                                                    \
		if (it_rc_ != (want))                                                   \
			it_fail(__FILE__, __LINE__, "%s returned %s (%s), expected %s", #expr, \
				concert_error_name(it_rc_), concert_error_last()->message,      \
				concert_error_name(want));                                      \
	} while (0)

/* Prints "<name>: N passed, N failed" and returns the exit status (0 or 1). */
int it_finish(const char *name);

/*
 * The fixture's URI with "?schema=<tag>_<pid>&pool=<pool>" appended, in a
 * static buffer of the caller (size IT_URI_MAX). Exits if the fixture's
 * variable is missing.
 */
#define IT_URI_MAX 512
const char *it_uri(char *buf, const char *tag, int pool);
/* The schema name inside a URI from it_uri. */
const char *it_schema_of(const char *uri);

/* A clock in a MAP_SHARED file: survives fork, visible to every process. */
typedef struct it_clock {
	_Atomic int64_t now;
} it_clock;

/* Anonymous shared mapping (inherited over fork), set to IT_EPOCH. */
it_clock *it_clock_new(void);
concert_time it_clock_read(void *ctx);

/* An engine on `uri` for store and queue, with `clock` and generous limits. */
concert_engine *it_engine(const char *uri, it_clock *clock, concert_time hold_ttl);
/* An engine for queue tests: its own store and queue URIs and queue policy. */
concert_engine *it_queue_engine(const char *store, const char *queue, it_clock *clock,
	uint32_t max_active, concert_time wait_idle_ttl, concert_time active_ttl);

/* A concert open for a month around the clock, one schedule, `seats` seats. */
typedef struct it_venue {
	int64_t concert_id;
	int64_t schedule_id;
	int32_t seats;
} it_venue;
void it_make_venue(concert_engine *e, it_venue *v, int32_t seats, int64_t price);

/* An ACTIVE queue token for user (max_active is large in it_engine). */
int it_token(concert_engine *e, char *token, size_t size, const char *user, int64_t concert_id);

/* libpq straight to the schema of `uri`, for the checkers. */
PGconn *it_db(const char *uri);
/* One int64 from a query with no parameters; -1 and a failure on error. */
int64_t it_db_int(PGconn *db, const char *sql);

/*
 * The invariants over the whole schema, read from the tables directly:
 * each RESERVED seat has exactly one confirmed reservation and the
 * converse; each confirmed reservation exactly one payment of its amount;
 * each wallet's balance >= 0 and equal to the sum of its transactions;
 * balances + payments - refunds == charges; a refund per cancelled one.
 */
void it_check_invariants(PGconn *db);

#endif
