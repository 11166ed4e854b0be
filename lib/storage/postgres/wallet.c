/*
 * Wallets, payments and reservations on PostgreSQL. charge, pay and cancel
 * are one PL/pgSQL call each (migration 2): one round trip, one
 * transaction. They are never re-sent after a connection failure mid-call
 * (the call may have committed); a caller with an idempotency key repeats
 * them safely, which is what the key is for.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/postgres/pg.h"

int pg_charge(void *ctx, int64_t *out_balance, const char *user_id, int64_t amount,
	      const char *idem_key, concert_time now)
{
	char a[PG_INT_BUF], at[PG_INT_BUF];
	const char *params[] = { user_id, pg_param_int(a, amount), idem_key, pg_param_int(at, now) };
	PGresult *res;
	int rc = pg_exec(ctx, PG_CHARGE, params, PG_ONCE, &res);
	if (rc == 0 && out_balance)
		*out_balance = pg_get_int64(res, 0, 0);
	PQclear(res);
	return rc;
}

int pg_balance(void *ctx, int64_t *out_balance, const char *user_id)
{
	const char *params[] = { user_id };
	PGresult *res;
	int rc = pg_exec(ctx, PG_BALANCE, params, PG_REPEATABLE, &res);
	if (rc == 0)
		*out_balance = pg_get_int64(res, 0, 0);
	PQclear(res);
	return rc;
}

int pg_history(void *ctx, concert_wallet_tx_list **out, const char *user_id, int64_t cursor,
	       size_t limit)
{
	char c[PG_INT_BUF], l[PG_INT_BUF];
	/* One more than asked tells whether there is a next page. */
	const char *params[] = { user_id, pg_param_int(c, cursor), pg_param_int(l, (int64_t)limit + 1) };
	PGresult *res;
	int rc = pg_exec(ctx, PG_HISTORY, params, PG_REPEATABLE, &res);
	if (rc < 0)
		return rc;
	size_t rows = (size_t)PQntuples(res);
	size_t n = rows > limit ? limit : rows;
	concert_wallet_tx_list *list = concert_sys_tx_list_alloc(n);
	if (!list) {
		PQclear(res);
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	}
	for (size_t i = 0; i < n; i++) {
		concert_wallet_tx *tx = &list->items[i];
		tx->id = pg_get_int64(res, (int)i, 0);
		tx->kind = (int32_t)pg_get_int64(res, (int)i, 1);
		tx->amount = pg_get_int64(res, (int)i, 2);
		tx->balance_after = pg_get_int64(res, (int)i, 3);
		tx->ref_id = pg_get_int64(res, (int)i, 4);
		tx->created_at = pg_get_int64(res, (int)i, 5);
	}
	list->next_cursor = rows > limit ? list->items[n - 1].id : 0;
	PQclear(res);
	*out = list;
	return 0;
}

/* token_id 0: the engine checked the token with the queue already. */
static int pay(void *ctx, concert_payment **out, const concert_pay_request *req, int64_t token_id)
{
	char concert[PG_INT_BUF], hold[PG_INT_BUF], now[PG_INT_BUF], token[PG_INT_BUF];
	const char *params[] = { req->user_id, pg_param_int(concert, req->concert_id),
		pg_param_int(hold, req->hold_id), req->idem_key, pg_param_int(now, req->now),
		token_id ? pg_param_int(token, token_id) : NULL };
	PGresult *res;
	int rc = pg_exec(ctx, PG_PAY, params, PG_ONCE, &res);
	if (rc < 0)
		return rc;
	long count = pg_get_int_array_count(res, 0, 6);
	concert_payment *p = NULL;
	if (count < 0 || count > CONCERT_HOLD_SEATS_MAX)
		rc = concert_sys_error(CONCERT_ECORRUPT, "reservation seats unreadable");
	else if (!(p = concert_sys_payment_alloc((size_t)count)))
		rc = concert_sys_error(CONCERT_ENOMEM, NULL);
	if (rc == 0) {
		p->payment_id = pg_get_int64(res, 0, 0);
		p->reservation_id = pg_get_int64(res, 0, 1);
		p->schedule_id = pg_get_int64(res, 0, 2);
		p->amount = pg_get_int64(res, 0, 3);
		p->balance = pg_get_int64(res, 0, 4);
		p->created_at = pg_get_int64(res, 0, 5);
		pg_get_int_array(p->seat_nos, (size_t)count, res, 0, 6);
		p->hold_id = req->hold_id;
		concert_sys_strlcpy(p->user_id, req->user_id, sizeof(p->user_id));
		*out = p;
	}
	PQclear(res);
	return rc;
}

int pg_pay(void *ctx, concert_payment **out, const concert_pay_request *req)
{
	return pay(ctx, out, req, 0);
}

int pg_pay_token(void *ctx, concert_payment **out, const concert_pay_request *req, int64_t token_id)
{
	return pay(ctx, out, req, token_id);
}

int pg_cancel(void *ctx, int64_t *out_refunded, int64_t *out_balance, const char *user_id,
	      int64_t reservation_id, concert_time now)
{
	char r[PG_INT_BUF], at[PG_INT_BUF];
	const char *params[] = { user_id, pg_param_int(r, reservation_id), pg_param_int(at, now) };
	PGresult *res;
	int rc = pg_exec(ctx, PG_CANCEL, params, PG_ONCE, &res);
	if (rc == 0) {
		if (out_refunded)
			*out_refunded = pg_get_int64(res, 0, 0);
		if (out_balance)
			*out_balance = pg_get_int64(res, 0, 1);
	}
	PQclear(res);
	return rc;
}

int pg_reservation_get(void *ctx, concert_reservation **out, int64_t reservation_id)
{
	char id[PG_INT_BUF];
	const char *params[] = { pg_param_int(id, reservation_id) };
	PGresult *res;
	int rc = pg_exec(ctx, PG_RESERVATION_GET, params, PG_REPEATABLE, &res);
	if (rc < 0)
		return rc;
	concert_reservation *r = NULL;
	long count = PQntuples(res) ? pg_get_int_array_count(res, 0, 7) : 0;
	if (PQntuples(res) == 0)
		rc = concert_sys_error(CONCERT_ENOTFOUND, "no such reservation");
	else if (count < 0 || count > CONCERT_HOLD_SEATS_MAX)
		rc = concert_sys_error(CONCERT_ECORRUPT, "reservation seats unreadable");
	else if (!(r = concert_sys_reservation_alloc((size_t)count)))
		rc = concert_sys_error(CONCERT_ENOMEM, NULL);
	if (rc == 0) {
		r->id = pg_get_int64(res, 0, 0);
		r->schedule_id = pg_get_int64(res, 0, 1);
		r->payment_id = pg_get_int64(res, 0, 2);
		r->amount = pg_get_int64(res, 0, 3);
		r->state = (int32_t)pg_get_int64(res, 0, 4);
		r->created_at = pg_get_int64(res, 0, 5);
		pg_get_text(r->user_id, sizeof(r->user_id), res, 0, 6);
		pg_get_int_array(r->seat_nos, (size_t)count, res, 0, 7);
		*out = r;
	}
	PQclear(res);
	return rc;
}
