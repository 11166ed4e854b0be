/*
 * Internal: the PostgreSQL backend (store and queue slots), shared by the
 * files of lib/storage/postgres.
 *
 *   pool.c     URI options, the connection pool, reconnects, statement
 *              execution with bounded retries, SQLSTATE -> CONCERT_E*
 *   schema.c   versioned migrations under an advisory lock, the tables,
 *              the prepared statements
 *   functions_store.c, functions_queue.c
 *              the server-side functions the operations call
 *   catalog.c  store open/close/health, concerts, schedules, seats, audit
 *   holds.c    hold, release, extend, read, sweep
 *   wallet.c   charge, balance, history, pay, cancel, reservations
 *   queue.c    the queue slot
 *
 * Every operation is one prepared statement, i.e. one round trip and one
 * transaction: either a plain SELECT/INSERT or a call of a PL/pgSQL
 * function the migration created. A function reports a domain error by
 * raising SQLSTATE 'C9nnn' (nnn = -CONCERT_E*), which rolls the whole
 * statement back; pool.c turns it back into the code.
 */
#ifndef CONCERT_POSTGRES_PG_H
#define CONCERT_POSTGRES_PG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "core/internal.h"

/* The prepared statements; pool.c holds their SQL by index. */
typedef enum pg_stmt {
	PG_CONCERT_ADD,
	PG_SCHEDULE_ADD,
	PG_SEATS_ADD,
	PG_CONCERTS_LIST,
	PG_CONCERT_GET,
	PG_SCHEDULES_LIST,
	PG_SCHEDULE_GET,
	PG_SEATS_LIST,
	PG_HOLD,
	PG_HOLD_RELEASE,
	PG_HOLD_EXTEND,
	PG_HOLD_GET,
	PG_HOLD_SWEEP,
	PG_CHARGE,
	PG_BALANCE,
	PG_HISTORY,
	PG_PAY,
	PG_CANCEL,
	PG_RESERVATION_GET,
	PG_AUDIT,
	PG_QUEUE_CALL,
	PG_QUEUE_SWEEP,
	PG_QUEUE_COUNTS,
	PG_PING,
	PG_STMT_COUNT
} pg_stmt;

/* May the statement run again after a connection failure mid-flight? */
typedef enum pg_retry {
	PG_ONCE = 0,   /* has effects that must not apply twice: fail with EUNAVAILABLE */
	PG_REPEATABLE  /* a read, or maintenance whose repeat changes nothing */
} pg_retry;

typedef struct pg_conn {
	PGconn *conn;
	uint64_t prepared;    /* bit i: statement i is prepared on this connection */
	int broken;           /* reset before the next use */
} pg_conn;

typedef struct pg_pool {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	pg_conn *conns;
	size_t size;
	size_t *free_stack;   /* indexes of idle connections */
	size_t free_count;
	/* libpq connection parameters (NULL-terminated), our options removed. */
	char **keywords;
	char **values;
	char schema[64];
	concert_backend_env env;
	_Atomic uint64_t round_trips;   /* statements sent, for the benchmark */
} pg_pool;

/*
 * Opens a pool for `uri` (postgresql://..., postgres://... or key=value)
 * and makes sure the schema is migrated. Our own options, removed before
 * libpq sees the rest: pool=N (connections, default 4), schema=NAME
 * (default "concert"). connect_timeout defaults to 5 s.
 * Errors: CONCERT_EINVAL (bad URI/option), CONCERT_EUNAVAILABLE, CONCERT_ENOMEM.
 */
int pg_pool_open(pg_pool **out, const char *uri, const concert_backend_env *env);
void pg_pool_close(pg_pool *pool);
/*
 * 1 if both pools connect with the same libpq parameters to the same
 * schema (pool sizes aside), i.e. reach the same tables; else 0. Textual,
 * so conservative: two spellings of one server count as different.
 */
int pg_pool_same_schema(const pg_pool *a, const pg_pool *b);

/*
 * Runs a prepared statement with text parameters (NULL = SQL NULL) and
 * returns its result (*out, PQclear it) or a negative code with the last
 * error set. Serialization failures, deadlocks and unique violations from
 * concurrent inserts are retried (bounded); so are connection failures for
 * PG_REPEATABLE statements. One call = one transaction.
 */
int pg_exec(pg_pool *pool, pg_stmt stmt, const char *const *params, pg_retry retry,
	PGresult **out);

/* Migrations 2 and 3 (functions_store.c, functions_queue.c). */
extern const char pg_sql_store_functions[];
extern const char pg_sql_queue_functions[];

/* schema.c: creates/migrates the schema on an open connection. */
int pg_schema_migrate(PGconn *conn, const char *schema);
/* The SQL of each prepared statement and its parameter count. */
const char *pg_stmt_sql(pg_stmt stmt, int *out_nparams);

/* --- result and parameter helpers (pool.c) -------------------------------- */

int64_t pg_get_int64(const PGresult *res, int row, int col);
int pg_get_null(const PGresult *res, int row, int col);
/* Copies a text column into a fixed-size field (truncating, NUL-terminated). */
void pg_get_text(char *dst, size_t dst_size, const PGresult *res, int row, int col);
/*
 * Parses an int[] column ("{1,2,3}") into out (at most max items);
 * returns the count, or -1 if malformed or too long.
 */
long pg_get_int_array(int32_t *out, size_t max, const PGresult *res, int row, int col);
/* Number of items of an int[] column, or -1. */
long pg_get_int_array_count(const PGresult *res, int row, int col);

/* A decimal int64 parameter in a caller buffer of PG_INT_BUF bytes. */
#define PG_INT_BUF 24
const char *pg_param_int(char *buf, int64_t v);
/* "{1,2,3}" into a malloc'd string; NULL on ENOMEM (error set). */
char *pg_param_int_array(const int32_t *v, size_t count);

/* The store's methods outside catalog.c (whose vtable lists them all). */
int pg_hold_seats(void *ctx, concert_hold **out, const concert_hold_request *req);
int pg_hold_seats_token(void *ctx, concert_hold **out, const concert_hold_request *req,
	int64_t token_id);
int pg_hold_release(void *ctx, const concert_hold_change *req);
int pg_hold_extend(void *ctx, concert_hold **out, const concert_hold_change *req);
int pg_hold_get(void *ctx, concert_hold **out, int64_t hold_id, concert_time now);
int pg_hold_sweep(void *ctx, concert_time now, uint64_t *out_swept);

int pg_charge(void *ctx, int64_t *out_balance, const char *user_id, int64_t amount,
	const char *idem_key, concert_time now);
int pg_balance(void *ctx, int64_t *out_balance, const char *user_id);
int pg_history(void *ctx, concert_wallet_tx_list **out, const char *user_id, int64_t cursor,
	size_t limit);
int pg_pay(void *ctx, concert_payment **out, const concert_pay_request *req);
int pg_pay_token(void *ctx, concert_payment **out, const concert_pay_request *req, int64_t token_id);
int pg_cancel(void *ctx, int64_t *out_refunded, int64_t *out_balance, const char *user_id,
	int64_t reservation_id, concert_time now);
int pg_reservation_get(void *ctx, concert_reservation **out, int64_t reservation_id);
/* The store's queue_shared (queue.c): the queue slot is this backend, same schema. */
int pg_store_queue_shared(void *ctx, const concert_queue_backend *queue, void *queue_ctx);

#endif
