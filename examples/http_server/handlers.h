/*
 * Handlers and the helpers they share (routes.c). Each handler fills
 * `resp` and never fails silently: every path ends in a response.
 */
#ifndef HTTP_HANDLERS_H
#define HTTP_HANDLERS_H

#include <jansson.h>

#include "jsonw.h"
#include "server.h"

#define JSON_CONTENT_TYPE "application/json"

/* Takes the writer's buffer as the body of a JSON response. */
void respond_json(response *resp, int status, jsonw *w);
void respond_empty(response *resp, int status);

/* The body as a JSON object, or NULL after answering 400. json_decref it. */
json_t *body_object(request *req, response *resp);
/* Required members; false after answering 400 (missing or wrong type). */
bool member_string(json_t *obj, const char *name, const char **out, response *resp);
bool member_int(json_t *obj, const char *name, int64_t *out, response *resp);

/* The i-th {placeholder} as a positive integer id; false after answering 400. */
bool param_id(request *req, int i, const char *what, int64_t *out, response *resp);
/* The i-th {placeholder} percent-decoded; false after answering 400. */
bool param_string(request *req, int i, const char *what, char *out, size_t out_size,
	response *resp);
/* Optional header: NULL when absent; false after answering 400 when present
 * but empty. */
bool header_idempotency_key(request *req, const char **out, response *resp);
/* X-QUEUE-TOKEN, or NULL (the library answers CONCERT_ETOKEN for it). */
const char *header_queue_token(request *req);

/* api.c: the /v1 endpoints of DESIGN.md §5 and a few more. */
void api_queue_enter(request *req, response *resp);
void api_queue_me(request *req, response *resp);
void api_queue_leave(request *req, response *resp);
void api_concerts(request *req, response *resp);
void api_schedules(request *req, response *resp);
void api_seats(request *req, response *resp);
void api_hold_create(request *req, response *resp);
void api_hold_get(request *req, response *resp);
void api_hold_release(request *req, response *resp);
void api_hold_extend(request *req, response *resp);
void api_wallet_charge(request *req, response *resp);
void api_wallet_get(request *req, response *resp);
void api_wallet_transactions(request *req, response *resp);
void api_payment_create(request *req, response *resp);
void api_reservation_get(request *req, response *resp);
void api_reservation_cancel(request *req, response *resp);

#endif
