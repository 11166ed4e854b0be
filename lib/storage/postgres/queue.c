/*
 * The queue slot on PostgreSQL, for deployments without Redis. Every call
 * is one call of concert_queue_call() (migration 3): it locks the concert's
 * row in queue_concerts, expires what is due, does its change, admits the
 * oldest WAITING tokens while there is room, and answers, all in one round
 * trip. A status read with nothing due takes no lock and writes nothing.
 * Positions come from a Fenwick tree of departures: O(log n), never a scan
 * of the tokens ahead (see schema.c).
 */
#include <string.h>

#include "storage/postgres/pg.h"

enum queue_op { OP_ENTER = 1, OP_STATUS = 2, OP_LEAVE = 3, OP_COMPLETE = 4, OP_ADMIT = 5 };

typedef struct queue_call {
	enum queue_op op;
	int64_t concert_id;
	int64_t token_id;
	const char *user_id;
	int touch;
	const concert_queue_policy *policy;
	concert_time now;
} queue_call;

static int call(void *ctx, const queue_call *c, concert_queue_entry *out, uint32_t *out_admitted)
{
	static const concert_queue_policy none = { 0, 0, 0, 0 };
	const concert_queue_policy *p = c->policy ? c->policy : &none;
	char op[PG_INT_BUF], concert[PG_INT_BUF], token[PG_INT_BUF], max[PG_INT_BUF];
	char rate[PG_INT_BUF], idle[PG_INT_BUF], active[PG_INT_BUF], now[PG_INT_BUF];
	const char *params[] = { pg_param_int(op, c->op), pg_param_int(concert, c->concert_id),
		pg_param_int(token, c->token_id), c->user_id, c->touch ? "true" : "false",
		pg_param_int(max, p->max_active), pg_param_int(rate, p->admit_per_second),
		pg_param_int(idle, p->wait_idle_ttl), pg_param_int(active, p->active_ttl),
		pg_param_int(now, c->now) };
	/* Status and admit only redo what is due: safe to resend. */
	pg_retry retry = c->op == OP_STATUS || c->op == OP_ADMIT ? PG_REPEATABLE : PG_ONCE;
	PGresult *res;
	int rc = pg_exec(ctx, PG_QUEUE_CALL, params, retry, &res);
	if (rc < 0)
		return rc;
	if (out && !pg_get_null(res, 0, 0)) {
		memset(out, 0, sizeof(*out));
		out->token_id = pg_get_int64(res, 0, 0);
		out->concert_id = c->concert_id;
		out->state = (int32_t)pg_get_int64(res, 0, 1);
		out->created = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
		out->position = pg_get_int64(res, 0, 3);
		out->issued_at = pg_get_int64(res, 0, 4);
		out->expires_at = pg_get_int64(res, 0, 5);
		out->admitted_total = (uint64_t)pg_get_int64(res, 0, 6);
		pg_get_text(out->user_id, sizeof(out->user_id), res, 0, 7);
	}
	if (out_admitted)
		*out_admitted = (uint32_t)pg_get_int64(res, 0, 8);
	PQclear(res);
	return 0;
}

static int queue_enter(void *ctx, concert_queue_entry *out, const char *user_id,
		       int64_t concert_id, const concert_queue_policy *policy, concert_time now)
{
	size_t len = user_id ? concert_strnlen(user_id, CONCERT_USER_ID_MAX) : 0;
	if (!out || !policy || len == 0 || len > CONCERT_USER_ID_MAX)
		return concert_sys_error(CONCERT_EINVAL, "enter needs out, a policy and a user id");
	queue_call c = { OP_ENTER, concert_id, 0, user_id, 0, policy, now };
	return call(ctx, &c, out, NULL);
}

static int queue_status(void *ctx, concert_queue_entry *out, int64_t concert_id,
			int64_t token_id, int touch, const concert_queue_policy *policy,
			concert_time now)
{
	if (!out || !policy)
		return concert_sys_error(CONCERT_EINVAL, "status needs out and a policy");
	queue_call c = { OP_STATUS, concert_id, token_id, NULL, touch, policy, now };
	return call(ctx, &c, out, NULL);
}

static int queue_leave(void *ctx, int64_t concert_id, int64_t token_id, concert_time now)
{
	queue_call c = { OP_LEAVE, concert_id, token_id, NULL, 0, NULL, now };
	return call(ctx, &c, NULL, NULL);
}

static int queue_complete(void *ctx, int64_t concert_id, int64_t token_id, concert_time now)
{
	queue_call c = { OP_COMPLETE, concert_id, token_id, NULL, 0, NULL, now };
	return call(ctx, &c, NULL, NULL);
}

static int queue_admit(void *ctx, uint32_t *out_admitted, int64_t concert_id,
		       const concert_queue_policy *policy, concert_time now)
{
	if (!policy)
		return concert_sys_error(CONCERT_EINVAL, "admit needs a policy");
	uint32_t admitted = 0;
	queue_call c = { OP_ADMIT, concert_id, 0, NULL, 0, policy, now };
	int rc = call(ctx, &c, NULL, &admitted);
	if (out_admitted)
		*out_admitted = admitted;
	return rc;
}

/* *out_swept: tokens expired plus ended tokens forgotten, over all concerts. */
static int queue_sweep(void *ctx, concert_time now, uint64_t *out_swept)
{
	char at[PG_INT_BUF];
	const char *params[] = { pg_param_int(at, now) };
	PGresult *res;
	int rc = pg_exec(ctx, PG_QUEUE_SWEEP, params, PG_REPEATABLE, &res);
	if (rc == 0 && out_swept)
		*out_swept = (uint64_t)pg_get_int64(res, 0, 0);
	PQclear(res);
	return rc;
}

/* Read-only and O(log n) plus what is due (see concert_queue_counts). */
static int queue_counts(void *ctx, int64_t concert_id, concert_time now, uint64_t *out_waiting,
			uint64_t *out_active)
{
	char concert[PG_INT_BUF], at[PG_INT_BUF];
	const char *params[] = { pg_param_int(concert, concert_id), pg_param_int(at, now) };
	PGresult *res;
	*out_waiting = *out_active = 0;
	int rc = pg_exec(ctx, PG_QUEUE_COUNTS, params, PG_REPEATABLE, &res);
	if (rc == 0) {
		int64_t waiting = pg_get_int64(res, 0, 0), active = pg_get_int64(res, 0, 1);
		*out_waiting = waiting > 0 ? (uint64_t)waiting : 0;
		*out_active = active > 0 ? (uint64_t)active : 0;
	}
	PQclear(res);
	return rc;
}

/*
 * Store and queue slots in one schema: the store's hold and pay functions
 * check the token themselves (and pay ends it) in their own transaction,
 * which saves the engine the queue's round trip before a hold and the two
 * around a payment.
 */
int pg_store_queue_shared(void *ctx, const concert_queue_backend *queue, void *queue_ctx)
{
	return queue == &concert_postgres_queue_backend && pg_pool_same_schema(ctx, queue_ctx);
}

static int queue_health(void *ctx)
{
	PGresult *res;
	int rc = pg_exec(ctx, PG_PING, NULL, PG_REPEATABLE, &res);
	PQclear(res);
	return rc;
}

static int queue_open(void **out_ctx, const char *uri, const concert_backend_env *env)
{
	if (!out_ctx)
		return concert_sys_error(CONCERT_EINVAL, "open needs out_ctx");
	*out_ctx = NULL;
	pg_pool *pool;
	int rc = pg_pool_open(&pool, uri, env);
	if (rc == 0)
		*out_ctx = pool;
	return rc;
}

static void queue_close(void *ctx)
{
	pg_pool_close(ctx);
}

const concert_queue_backend concert_postgres_queue_backend = {
	.version = CONCERT_QUEUE_BACKEND_VERSION,
	.scheme = "postgresql",
	.open = queue_open,
	.close = queue_close,
	.health = queue_health,
	.enter = queue_enter,
	.status = queue_status,
	.leave = queue_leave,
	.complete = queue_complete,
	.admit = queue_admit,
	.sweep = queue_sweep,
	.counts = queue_counts,
};
