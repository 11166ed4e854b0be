/*
 * Payments and cancellations.
 */
#include "core/engine.h"

const char *concert_reservation_state_name(int state)
{
	static const char *const names[] = { "UNKNOWN", "CONFIRMED", "CANCELLED" };
	return (state >= CONCERT_RESERVATION_CONFIRMED && state <= CONCERT_RESERVATION_CANCELLED)
		       ? names[state] : "UNKNOWN";
}

/*
 * Once paid, the token is DONE, yet a client that lost the answer must get
 * the original payment back when it repeats the call with its idempotency
 * key. The store answers such repeats itself, and paying a PAID hold can
 * never take money twice, so the store may see the repeat without an ACTIVE
 * token, but only for a hold already paid.
 */
static int repeat_of_paid_hold(concert_engine *e, concert_payment **payment,
			       const concert_pay_request *req)
{
	concert_hold *hold = NULL;
	int rc = e->store->hold_get(e->store_ctx, &hold, req->hold_id, req->now);
	int paid = rc == 0 && hold->state == CONCERT_HOLD_PAID;
	concert_free(hold);
	return paid ? e->store->pay(e->store_ctx, payment, req) : CONCERT_EEXPIRED;
}

/*
 * The store checks the token and marks it DONE in the payment's own
 * transaction: one round trip, and the token ends with the payment, atomically.
 * ENGINE_ASK_QUEUE when it did not find the token ACTIVE (nothing changed):
 * a repeat after the token is DONE, a waiting or expired token.
 */
static int pay_token_in_store(concert_engine *e, concert_payment **payment,
			      concert_pay_request *req, concert_token_claims *claims, const char *token)
{
	int rc = token_claims(e, claims, token, req->now);
	if (rc < 0)
		return rc;
	req->user_id = claims->user_id;
	req->concert_id = claims->concert_id;
	rc = e->store->pay_token(e->store_ctx, payment, req, claims->token_id);
	if (rc != CONCERT_ENOT_ACTIVE)
		return rc;
	concert_error_clear();
	return ENGINE_ASK_QUEUE;
}

/* The queue checks the token, the store pays, the queue marks the token DONE. */
static int pay_token_from_queue(concert_engine *e, concert_payment **payment,
				concert_pay_request *req, concert_token_claims *claims,
				const char *token)
{
	int rc = token_active(e, claims, token, 0, req->now);
	req->user_id = claims->user_id;
	req->concert_id = claims->concert_id;
	if (rc == 0) {
		rc = e->store->pay(e->store_ctx, payment, req);
		/* The hold is consumed whatever happens here; a token left ACTIVE by
		 * a failed update only lives until active_ttl, so the payment stands
		 * and the operator hears of it. */
		if (rc == 0 && e->queue->complete(e->queue_ctx, claims->concert_id, claims->token_id,
						  req->now) < 0)
			engine_log(e, CONCERT_LOG_WARN, concert_error_last()->message);
	} else if (rc == CONCERT_EEXPIRED && req->idem_key) {
		char why[256];
		concert_sys_strlcpy(why, concert_error_last()->message, sizeof(why));
		if (repeat_of_paid_hold(e, payment, req) == 0)
			rc = 0;
		else
			concert_sys_error(rc, why);
	}
	return rc;
}

int concert_pay(concert_engine *e, concert_payment **out, const char *token, int64_t hold_id,
		const char *idem_key)
{
	engine_begin();
	if (!e)
		return concert_sys_error(CONCERT_EINVAL, "engine is NULL");
	if (out)
		*out = NULL;
	concert_token_claims claims = { 0 };
	concert_payment *payment = NULL;
	int rc = check_id(hold_id, "hold_id");
	if (rc == 0)
		rc = check_idem_key(idem_key);
	concert_pay_request req = { NULL, 0, hold_id, idem_key, concert_engine_now(e) };
	if (rc == 0)
		rc = e->store_checks_tokens ? pay_token_in_store(e, &payment, &req, &claims, token)
					    : ENGINE_ASK_QUEUE;
	if (rc == ENGINE_ASK_QUEUE)
		rc = pay_token_from_queue(e, &payment, &req, &claims, token);
	if (rc == 0 && out)
		*out = payment;
	else
		concert_free(payment);
	return engine_finish(e, CONCERT_OP_PAY, rc);
}

int concert_reservation_cancel(concert_engine *e, int64_t *out_refunded, int64_t *out_balance,
			       const char *user_id, int64_t reservation_id)
{
	engine_begin();
	if (!e)
		return concert_sys_error(CONCERT_EINVAL, "engine is NULL");
	int64_t refunded = 0, balance = 0;
	int rc = check_user_id(user_id);
	if (rc == 0)
		rc = check_id(reservation_id, "reservation_id");
	if (rc == 0)
		rc = e->store->cancel(e->store_ctx, &refunded, &balance, user_id, reservation_id,
				      concert_engine_now(e));
	if (rc == 0) {
		if (out_refunded)
			*out_refunded = refunded;
		if (out_balance)
			*out_balance = balance;
	}
	return engine_finish(e, CONCERT_OP_CANCEL, rc);
}

int concert_reservation_get(concert_engine *e, concert_reservation **out, int64_t reservation_id)
{
	REQUIRE_ENGINE(e, out);
	*out = NULL;
	int rc = check_id(reservation_id, "reservation_id");
	if (rc == 0)
		rc = e->store->reservation_get(e->store_ctx, out, reservation_id);
	return engine_finish(e, CONCERT_OP_RESERVATION_READ, rc);
}

