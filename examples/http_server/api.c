/*
 * The /v1 endpoints: DESIGN.md §5, plus hold read/extend, queue leave,
 * wallet history and reservation read. Each handler decodes its input, makes
 * one libconcert call and encodes the result or the error.
 */
#include <stdio.h>
#include <string.h>

#include "handlers.h"

static concert_engine *engine_of(request *req)
{
	return req->app->engine;
}

/* ---- queue ------------------------------------------------------------------ */

static void write_queue_status(jsonw *w, const concert_queue_status *st)
{
	jsonw_object_begin(w);
	jsonw_kv_string(w, "token", st->token);
	jsonw_kv_string(w, "status", concert_queue_state_name(st->state));
	jsonw_kv_int(w, "position", st->position);
	jsonw_kv_int(w, "estimatedWaitSeconds", st->estimated_wait_seconds);
	jsonw_key(w, "activeUntil");
	if (st->state == CONCERT_QUEUE_ACTIVE)
		jsonw_time(w, st->expires_at);
	else
		jsonw_null(w);
	jsonw_kv_int(w, "concertId", st->concert_id);
	jsonw_kv_string(w, "userId", st->user_id);
	jsonw_object_end(w);
}

static void respond_queue_status(response *resp, int status, const concert_queue_status *st)
{
	jsonw w;
	jsonw_init(&w);
	write_queue_status(&w, st);
	respond_json(resp, status, &w);
}

void api_queue_enter(request *req, response *resp)
{
	json_t *body = body_object(req, resp);
	if (!body)
		return;
	const char *user_id;
	int64_t concert_id;
	if (member_string(body, "userId", &user_id, resp) &&
	    member_int(body, "concertId", &concert_id, resp)) {
		concert_queue_status *st = NULL;
		int rc = concert_queue_enter(engine_of(req), &st, user_id, concert_id);
		if (rc < 0)
			respond_engine_error(resp, rc);
		else
			respond_queue_status(resp, st->created ? 201 : 200, st);
		concert_free(st);
	}
	json_decref(body);
}

/* Polling the status is what keeps a waiting client alive, so this is a
 * heartbeat, not a bare read. */
void api_queue_me(request *req, response *resp)
{
	concert_queue_status *st = NULL;
	int rc = concert_queue_heartbeat(engine_of(req), &st, header_queue_token(req));
	if (rc < 0)
		respond_engine_error(resp, rc);
	else
		respond_queue_status(resp, 200, st);
	concert_free(st);
}

void api_queue_leave(request *req, response *resp)
{
	int rc = concert_queue_leave(engine_of(req), header_queue_token(req));
	if (rc < 0)
		respond_engine_error(resp, rc);
	else
		respond_empty(resp, 204);
}

/* ---- catalog ----------------------------------------------------------------- */

void api_concerts(request *req, response *resp)
{
	concert_concert_list *list = NULL;
	int rc = concert_concerts_list(engine_of(req), &list);
	if (rc < 0) {
		respond_engine_error(resp, rc);
		return;
	}
	jsonw w;
	jsonw_init(&w);
	jsonw_array_begin(&w);
	for (size_t i = 0; i < list->count; i++) {
		const concert_concert *c = &list->items[i];
		jsonw_object_begin(&w);
		jsonw_kv_int(&w, "id", c->id);
		jsonw_kv_string(&w, "title", c->title);
		jsonw_kv_time(&w, "opensAt", c->opens_at);
		jsonw_kv_time(&w, "closesAt", c->closes_at);
		jsonw_object_end(&w);
	}
	jsonw_array_end(&w);
	concert_free(list);
	respond_json(resp, 200, &w);
}

void api_schedules(request *req, response *resp)
{
	int64_t concert_id;
	if (!param_id(req, 0, "concert id", &concert_id, resp))
		return;
	concert_schedule_list *list = NULL;
	int rc = concert_schedules_list(engine_of(req), &list, concert_id);
	if (rc < 0) {
		respond_engine_error(resp, rc);
		return;
	}
	jsonw w;
	jsonw_init(&w);
	jsonw_array_begin(&w);
	for (size_t i = 0; i < list->count; i++) {
		const concert_schedule *s = &list->items[i];
		jsonw_object_begin(&w);
		jsonw_kv_int(&w, "id", s->id);
		jsonw_kv_int(&w, "concertId", s->concert_id);
		jsonw_kv_time(&w, "startsAt", s->starts_at);
		jsonw_kv_string(&w, "venue", s->venue);
		jsonw_kv_int(&w, "totalSeats", s->total_seats);
		jsonw_kv_int(&w, "availableSeats", s->available_seats);
		jsonw_kv_int(&w, "heldSeats", s->held_seats);
		jsonw_kv_int(&w, "reservedSeats", s->reserved_seats);
		jsonw_object_end(&w);
	}
	jsonw_array_end(&w);
	concert_free(list);
	respond_json(resp, 200, &w);
}

void api_seats(request *req, response *resp)
{
	int64_t schedule_id;
	if (!param_id(req, 0, "schedule id", &schedule_id, resp))
		return;
	concert_seat_list *list = NULL;
	int rc = concert_seats_list(engine_of(req), &list, schedule_id);
	if (rc < 0) {
		respond_engine_error(resp, rc);
		return;
	}
	jsonw w;
	jsonw_init(&w);
	jsonw_array_begin(&w);
	for (size_t i = 0; i < list->count; i++) {
		const concert_seat *s = &list->items[i];
		jsonw_object_begin(&w);
		jsonw_kv_int(&w, "seatNo", s->seat_no);
		jsonw_kv_string(&w, "grade", s->grade);
		jsonw_kv_int(&w, "price", s->price);
		jsonw_kv_string(&w, "status", concert_seat_state_name(s->state));
		jsonw_object_end(&w);
	}
	jsonw_array_end(&w);
	concert_free(list);
	respond_json(resp, 200, &w);
}

/* ---- holds ------------------------------------------------------------------- */

static void respond_hold(response *resp, int status, const concert_hold *h)
{
	jsonw w;
	jsonw_init(&w);
	jsonw_object_begin(&w);
	jsonw_kv_int(&w, "holdId", h->id);
	jsonw_kv_int(&w, "scheduleId", h->schedule_id);
	jsonw_key(&w, "seatNos");
	jsonw_array_begin(&w);
	for (size_t i = 0; i < h->seat_count; i++)
		jsonw_int(&w, h->seat_nos[i]);
	jsonw_array_end(&w);
	jsonw_kv_int(&w, "amount", h->amount);
	jsonw_kv_time(&w, "expiresAt", h->expires_at);
	jsonw_kv_string(&w, "status", concert_hold_state_name(h->state));
	jsonw_kv_int(&w, "extensions", h->extensions);
	jsonw_object_end(&w);
	respond_json(resp, status, &w);
}

/* "seatNos": 1..CONCERT_HOLD_SEATS_MAX integers that fit a seat number. The
 * library judges the values; this only refuses what cannot be passed on. */
static bool member_seat_nos(json_t *obj, int32_t *out, size_t *out_count, response *resp)
{
	json_t *seats = json_object_get(obj, "seatNos");
	if (!seats || !json_is_array(seats)) {
		respond_error(resp, 400, concert_error_name(CONCERT_EINVAL),
			      seats ? "\"seatNos\" must be an array of seat numbers"
				    : "\"seatNos\" is required");
		return false;
	}
	size_t n = json_array_size(seats);
	if (n > CONCERT_HOLD_SEATS_MAX) {
		char message[64];
		snprintf(message, sizeof(message), "at most %d seats per hold", CONCERT_HOLD_SEATS_MAX);
		respond_error(resp, 400, concert_error_name(CONCERT_EINVAL), message);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(seats, i);
		json_int_t seat = json_is_integer(v) ? json_integer_value(v) : 0;
		if (!json_is_integer(v) || seat < INT32_MIN || seat > INT32_MAX) {
			respond_error(resp, 400, concert_error_name(CONCERT_EINVAL),
				      "\"seatNos\" must hold seat numbers (integers)");
			return false;
		}
		out[i] = (int32_t)seat;
	}
	*out_count = n;
	return true;
}

void api_hold_create(request *req, response *resp)
{
	json_t *body = body_object(req, resp);
	if (!body)
		return;
	int64_t schedule_id;
	int32_t seats[CONCERT_HOLD_SEATS_MAX];
	size_t count;
	if (member_int(body, "scheduleId", &schedule_id, resp) &&
	    member_seat_nos(body, seats, &count, resp)) {
		concert_hold *hold = NULL;
		int rc = concert_hold_seats(engine_of(req), &hold, header_queue_token(req), schedule_id,
					    seats, count);
		if (rc < 0)
			respond_engine_error(resp, rc);
		else
			respond_hold(resp, 201, hold);
		concert_free(hold);
	}
	json_decref(body);
}

void api_hold_get(request *req, response *resp)
{
	int64_t hold_id;
	if (!param_id(req, 0, "hold id", &hold_id, resp))
		return;
	concert_hold *hold = NULL;
	int rc = concert_hold_get(engine_of(req), &hold, header_queue_token(req), hold_id);
	if (rc < 0)
		respond_engine_error(resp, rc);
	else
		respond_hold(resp, 200, hold);
	concert_free(hold);
}

void api_hold_release(request *req, response *resp)
{
	int64_t hold_id;
	if (!param_id(req, 0, "hold id", &hold_id, resp))
		return;
	int rc = concert_hold_release(engine_of(req), header_queue_token(req), hold_id, NULL, 0);
	if (rc < 0)
		respond_engine_error(resp, rc);
	else
		respond_empty(resp, 204);
}

void api_hold_extend(request *req, response *resp)
{
	int64_t hold_id;
	if (!param_id(req, 0, "hold id", &hold_id, resp))
		return;
	concert_hold *hold = NULL;
	int rc = concert_hold_extend(engine_of(req), &hold, header_queue_token(req), hold_id);
	if (rc < 0)
		respond_engine_error(resp, rc);
	else
		respond_hold(resp, 200, hold);
	concert_free(hold);
}

/* ---- wallets ----------------------------------------------------------------- */

/* Room for a user id one byte too long, so the library reports the length. */
#define USER_BUF (CONCERT_USER_ID_MAX + 2)

static void respond_balance(response *resp, int64_t balance)
{
	jsonw w;
	jsonw_init(&w);
	jsonw_object_begin(&w);
	jsonw_kv_int(&w, "balance", balance);
	jsonw_object_end(&w);
	respond_json(resp, 200, &w);
}

/*
 * An Idempotency-Key repeat answers the same: the library returns the
 * original balance_after for a repeated key, so no response cache is needed.
 */
void api_wallet_charge(request *req, response *resp)
{
	char user_id[USER_BUF];
	const char *idem_key;
	if (!param_string(req, 0, "user id", user_id, sizeof(user_id), resp) ||
	    !header_idempotency_key(req, &idem_key, resp))
		return;
	json_t *body = body_object(req, resp);
	if (!body)
		return;
	int64_t amount;
	if (member_int(body, "amount", &amount, resp)) {
		int64_t balance = 0;
		int rc = concert_wallet_charge(engine_of(req), &balance, user_id, amount, idem_key);
		if (rc < 0)
			respond_engine_error(resp, rc);
		else
			respond_balance(resp, balance);
	}
	json_decref(body);
}

void api_wallet_get(request *req, response *resp)
{
	char user_id[USER_BUF];
	if (!param_string(req, 0, "user id", user_id, sizeof(user_id), resp))
		return;
	int64_t balance = 0;
	int rc = concert_wallet_balance(engine_of(req), &balance, user_id);
	if (rc < 0)
		respond_engine_error(resp, rc);
	else
		respond_balance(resp, balance);
}

/* An optional non-negative integer query argument. */
static bool query_int(request *req, const char *name, int64_t fallback, int64_t *out,
		      response *resp)
{
	char text[24];
	if (!request_query(req, name, text, sizeof(text))) {
		*out = fallback;
		return true;
	}
	int64_t v = 0;
	bool ok = text[0] != '\0';
	for (const char *p = text; ok && *p; p++) {
		if (*p < '0' || *p > '9' || v > (INT64_MAX - (*p - '0')) / 10)
			ok = false;
		else
			v = v * 10 + (*p - '0');
	}
	if (!ok) {
		char message[96];
		snprintf(message, sizeof(message), "%s must be a non-negative integer", name);
		respond_error(resp, 400, concert_error_name(CONCERT_EINVAL), message);
		return false;
	}
	*out = v;
	return true;
}

void api_wallet_transactions(request *req, response *resp)
{
	char user_id[USER_BUF];
	int64_t cursor, limit;
	if (!param_string(req, 0, "user id", user_id, sizeof(user_id), resp) ||
	    !query_int(req, "cursor", 0, &cursor, resp) || !query_int(req, "limit", 50, &limit, resp))
		return;
	concert_wallet_tx_list *list = NULL;
	int rc = concert_wallet_history(engine_of(req), &list, user_id, cursor, (size_t)limit);
	if (rc < 0) {
		respond_engine_error(resp, rc);
		return;
	}
	jsonw w;
	jsonw_init(&w);
	jsonw_object_begin(&w);
	jsonw_key(&w, "items");
	jsonw_array_begin(&w);
	for (size_t i = 0; i < list->count; i++) {
		const concert_wallet_tx *tx = &list->items[i];
		jsonw_object_begin(&w);
		jsonw_kv_int(&w, "id", tx->id);
		jsonw_kv_string(&w, "kind", concert_tx_kind_name(tx->kind));
		jsonw_kv_int(&w, "amount", tx->amount);
		jsonw_kv_int(&w, "balanceAfter", tx->balance_after);
		jsonw_key(&w, "reservationId");
		if (tx->ref_id)
			jsonw_int(&w, tx->ref_id);
		else
			jsonw_null(&w);
		jsonw_kv_time(&w, "createdAt", tx->created_at);
		jsonw_object_end(&w);
	}
	jsonw_array_end(&w);
	jsonw_key(&w, "nextCursor");
	if (list->next_cursor)
		jsonw_int(&w, list->next_cursor);
	else
		jsonw_null(&w);
	jsonw_object_end(&w);
	concert_free(list);
	respond_json(resp, 200, &w);
}

/* ---- payments and reservations --------------------------------------------------- */

/*
 * A repeat with the same Idempotency-Key gets the library's original
 * payment back (even though the token is DONE by then), so the body is the
 * same without a response cache.
 */
void api_payment_create(request *req, response *resp)
{
	const char *idem_key;
	if (!header_idempotency_key(req, &idem_key, resp))
		return;
	json_t *body = body_object(req, resp);
	if (!body)
		return;
	int64_t hold_id;
	if (member_int(body, "holdId", &hold_id, resp)) {
		concert_payment *p = NULL;
		int rc = concert_pay(engine_of(req), &p, header_queue_token(req), hold_id, idem_key);
		if (rc < 0) {
			respond_engine_error(resp, rc);
		} else {
			jsonw w;
			jsonw_init(&w);
			jsonw_object_begin(&w);
			jsonw_kv_int(&w, "paymentId", p->payment_id);
			jsonw_kv_int(&w, "reservationId", p->reservation_id);
			jsonw_kv_int(&w, "amount", p->amount);
			jsonw_kv_int(&w, "balance", p->balance);
			jsonw_object_end(&w);
			respond_json(resp, 201, &w);
		}
		concert_free(p);
	}
	json_decref(body);
}

void api_reservation_get(request *req, response *resp)
{
	int64_t reservation_id;
	char user_id[USER_BUF];
	if (!param_id(req, 0, "reservation id", &reservation_id, resp))
		return;
	if (!request_query(req, "userId", user_id, sizeof(user_id))) {
		respond_error(resp, 400, concert_error_name(CONCERT_EINVAL),
			      "the userId query argument is required");
		return;
	}
	concert_reservation *r = NULL;
	int rc = concert_reservation_get(engine_of(req), &r, reservation_id);
	if (rc < 0) {
		respond_engine_error(resp, rc);
		return;
	}
	if (strcmp(r->user_id, user_id) != 0) {
		concert_free(r);
		respond_error(resp, 403, concert_error_name(CONCERT_EFORBIDDEN),
			      "the reservation belongs to another user");
		return;
	}
	jsonw w;
	jsonw_init(&w);
	jsonw_object_begin(&w);
	jsonw_kv_int(&w, "id", r->id);
	jsonw_kv_int(&w, "scheduleId", r->schedule_id);
	jsonw_kv_int(&w, "paymentId", r->payment_id);
	jsonw_kv_string(&w, "userId", r->user_id);
	jsonw_key(&w, "seatNos");
	jsonw_array_begin(&w);
	for (size_t i = 0; i < r->seat_count; i++)
		jsonw_int(&w, r->seat_nos[i]);
	jsonw_array_end(&w);
	jsonw_kv_int(&w, "amount", r->amount);
	jsonw_kv_string(&w, "status", concert_reservation_state_name(r->state));
	jsonw_kv_time(&w, "createdAt", r->created_at);
	jsonw_object_end(&w);
	concert_free(r);
	respond_json(resp, 200, &w);
}

void api_reservation_cancel(request *req, response *resp)
{
	int64_t reservation_id;
	if (!param_id(req, 0, "reservation id", &reservation_id, resp))
		return;
	json_t *body = body_object(req, resp);
	if (!body)
		return;
	const char *user_id;
	if (member_string(body, "userId", &user_id, resp)) {
		int64_t refunded = 0, balance = 0;
		int rc = concert_reservation_cancel(engine_of(req), &refunded, &balance, user_id,
						    reservation_id);
		if (rc < 0) {
			respond_engine_error(resp, rc);
		} else {
			jsonw w;
			jsonw_init(&w);
			jsonw_object_begin(&w);
			jsonw_kv_int(&w, "refunded", refunded);
			jsonw_kv_int(&w, "balance", balance);
			jsonw_object_end(&w);
			respond_json(resp, 200, &w);
		}
	}
	json_decref(body);
}
