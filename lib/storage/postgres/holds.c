/*
 * Holds on PostgreSQL: each call is one statement (a PL/pgSQL function made
 * by migration 2, or a plain SELECT), so one round trip and one transaction.
 * Expiry is judged against the engine's `now`, passed as a parameter.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/postgres/pg.h"

/* Columns: id, schedule_id, concert_id, amount, created_at, expires_at,
 * state, extensions, user_id, seat_nos. */
static int hold_from_row(concert_hold **out, const PGresult *res)
{
	long count = pg_get_int_array_count(res, 0, 9);
	if (count < 0 || count > CONCERT_HOLD_SEATS_MAX)
		return concert_sys_error(CONCERT_ECORRUPT, "hold seats unreadable");
	concert_hold *h = concert_sys_hold_alloc((size_t)count);
	if (!h)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	h->id = pg_get_int64(res, 0, 0);
	h->schedule_id = pg_get_int64(res, 0, 1);
	h->concert_id = pg_get_int64(res, 0, 2);
	h->amount = pg_get_int64(res, 0, 3);
	h->created_at = pg_get_int64(res, 0, 4);
	h->expires_at = pg_get_int64(res, 0, 5);
	h->state = (int32_t)pg_get_int64(res, 0, 6);
	h->extensions = (uint32_t)pg_get_int64(res, 0, 7);
	pg_get_text(h->user_id, sizeof(h->user_id), res, 0, 8);
	pg_get_int_array(h->seat_nos, (size_t)count, res, 0, 9);
	*out = h;
	return 0;
}

/* token_id 0: the engine checked the token with the queue already. */
static int hold_seats(void *ctx, concert_hold **out, const concert_hold_request *req,
		      int64_t token_id)
{
	if (!req->seat_nos || req->seat_count == 0 || req->seat_count > CONCERT_HOLD_SEATS_MAX)
		return concert_sys_error(CONCERT_EINVAL, "1..64 seats per hold");
	char *seats = pg_param_int_array(req->seat_nos, req->seat_count);
	if (!seats)
		return CONCERT_ENOMEM;
	char concert[PG_INT_BUF], schedule[PG_INT_BUF], now[PG_INT_BUF], expires[PG_INT_BUF];
	char holds[PG_INT_BUF], max_seats[PG_INT_BUF], token[PG_INT_BUF];
	const char *params[] = { req->user_id, pg_param_int(concert, req->concert_id),
		pg_param_int(schedule, req->schedule_id), seats, pg_param_int(now, req->now),
		pg_param_int(expires, req->expires_at), pg_param_int(holds, req->max_holds_per_user),
		pg_param_int(max_seats, req->max_seats_per_user),
		token_id ? pg_param_int(token, token_id) : NULL };
	PGresult *res;
	int rc = pg_exec(ctx, PG_HOLD, params, PG_ONCE, &res);
	free(seats);
	if (rc < 0)
		return rc;
	concert_hold *h = concert_sys_hold_alloc(req->seat_count);
	if (!h) {
		PQclear(res);
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	}
	h->id = pg_get_int64(res, 0, 0);
	h->amount = pg_get_int64(res, 0, 1);
	PQclear(res);
	h->schedule_id = req->schedule_id;
	h->concert_id = req->concert_id;
	h->created_at = req->now;
	h->expires_at = req->expires_at;
	h->state = CONCERT_HOLD_HELD;
	concert_sys_strlcpy(h->user_id, req->user_id, sizeof(h->user_id));
	memcpy(h->seat_nos, req->seat_nos, req->seat_count * sizeof(*req->seat_nos));
	*out = h;
	return 0;
}

int pg_hold_seats(void *ctx, concert_hold **out, const concert_hold_request *req)
{
	return hold_seats(ctx, out, req, 0);
}

int pg_hold_seats_token(void *ctx, concert_hold **out, const concert_hold_request *req,
			int64_t token_id)
{
	return hold_seats(ctx, out, req, token_id);
}

int pg_hold_release(void *ctx, const concert_hold_change *req)
{
	char *seats = pg_param_int_array(req->seat_nos, req->seat_nos ? req->seat_count : 0);
	if (!seats)
		return CONCERT_ENOMEM;
	char hold[PG_INT_BUF], now[PG_INT_BUF];
	const char *params[] = { req->user_id, pg_param_int(hold, req->hold_id), seats,
		pg_param_int(now, req->now) };
	PGresult *res;
	int rc = pg_exec(ctx, PG_HOLD_RELEASE, params, PG_ONCE, &res);
	free(seats);
	PQclear(res);
	return rc;
}

int pg_hold_extend(void *ctx, concert_hold **out, const concert_hold_change *req)
{
	char hold[PG_INT_BUF], now[PG_INT_BUF], ttl[PG_INT_BUF], life[PG_INT_BUF], ext[PG_INT_BUF];
	const char *params[] = { req->user_id, pg_param_int(hold, req->hold_id),
		pg_param_int(now, req->now), pg_param_int(ttl, req->ttl),
		pg_param_int(life, req->max_lifetime), pg_param_int(ext, req->max_extensions) };
	PGresult *res;
	int rc = pg_exec(ctx, PG_HOLD_EXTEND, params, PG_ONCE, &res);
	if (rc == 0)
		rc = hold_from_row(out, res);
	PQclear(res);
	return rc;
}

int pg_hold_get(void *ctx, concert_hold **out, int64_t hold_id, concert_time now)
{
	char hold[PG_INT_BUF], at[PG_INT_BUF];
	const char *params[] = { pg_param_int(hold, hold_id), pg_param_int(at, now) };
	PGresult *res;
	int rc = pg_exec(ctx, PG_HOLD_GET, params, PG_REPEATABLE, &res);
	if (rc == 0 && PQntuples(res) == 0)
		rc = concert_sys_error(CONCERT_ENOTFOUND, "no such hold");
	else if (rc == 0)
		rc = hold_from_row(out, res);
	PQclear(res);
	return rc;
}

/* Marks expired holds EXPIRED and frees their seats; repeatable. */
int pg_hold_sweep(void *ctx, concert_time now, uint64_t *out_swept)
{
	char at[PG_INT_BUF];
	const char *params[] = { pg_param_int(at, now) };
	PGresult *res;
	int rc = pg_exec(ctx, PG_HOLD_SWEEP, params, PG_REPEATABLE, &res);
	if (rc == 0 && out_swept)
		*out_swept = (uint64_t)pg_get_int64(res, 0, 0);
	PQclear(res);
	return rc;
}
