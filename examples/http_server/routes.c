/*
 * Routing, error mapping and the operational endpoints (/, /static, /health,
 * /metrics and the test-only /_test/ ones).
 */
#include <stdio.h>
#include <string.h>

#include "handlers.h"

/* ---- responses ---------------------------------------------------------------- */

static const char oom_body[] = "{\"error\":\"out_of_memory\",\"message\":\"out of memory\"}";

static void respond_oom(response *resp)
{
	resp->status = 503;
	resp->body = (char *)oom_body;
	resp->body_len = sizeof(oom_body) - 1;
	resp->body_static = true;
	resp->content_type = JSON_CONTENT_TYPE;
	resp->retry_after = 1;
}

void respond_json(response *resp, int status, jsonw *w)
{
	size_t len;
	char *body = jsonw_take(w, &len);
	if (!body) {
		respond_oom(resp);
		return;
	}
	resp->status = status;
	resp->body = body;
	resp->body_len = len;
	resp->content_type = JSON_CONTENT_TYPE;
}

void respond_empty(response *resp, int status)
{
	resp->status = status;
	resp->body = NULL;
	resp->body_len = 0;
}

void respond_error(response *resp, int status, const char *error, const char *message)
{
	jsonw w;
	jsonw_init(&w);
	jsonw_object_begin(&w);
	jsonw_kv_string(&w, "error", error);
	jsonw_kv_string(&w, "message", message);
	jsonw_object_end(&w);
	respond_json(resp, status, &w);
}

int status_for_engine_error(int code)
{
	switch (code) {
	case CONCERT_EINVAL:
	case CONCERT_EOVERFLOW:
		return 400;
	case CONCERT_ETOKEN:
		return 401;
	case CONCERT_EFUNDS:
		return 402;
	case CONCERT_ENOT_ACTIVE:
	case CONCERT_EFORBIDDEN:
		return 403;
	case CONCERT_ENOTFOUND:
		return 404;
	case CONCERT_ESEAT_UNAVAILABLE:
	case CONCERT_ESTATE:
	case CONCERT_EIDEMPOTENCY:
	case CONCERT_ECLOSED:
	case CONCERT_EEXISTS:
		return 409;
	case CONCERT_EEXPIRED:
		return 410;
	case CONCERT_ELIMIT:
		return 429;
	case CONCERT_EUNAVAILABLE:
	case CONCERT_ENOMEM:
		return 503;
	default: /* ECORRUPT, EIO, EVERSION, EINTERNAL: the server's fault */
		return 500;
	}
}

void respond_engine_error(response *resp, int code)
{
	const concert_error *err = concert_error_last();
	int status = status_for_engine_error(code);
	jsonw w;
	jsonw_init(&w);
	jsonw_object_begin(&w);
	jsonw_kv_string(&w, "error", concert_error_name(code));
	jsonw_kv_string(&w, "message",
			err->code == code && err->message[0] ? err->message : concert_strerror(code));
	if (code == CONCERT_ESEAT_UNAVAILABLE) {
		jsonw_key(&w, "conflicts");
		jsonw_array_begin(&w);
		for (size_t i = 0; err->code == code && i < err->conflict_count; i++)
			jsonw_int(&w, err->conflicts[i]);
		jsonw_array_end(&w);
	}
	jsonw_object_end(&w);
	respond_json(resp, status, &w);
	if (status == 503)
		resp->retry_after = 1;
}

/* ---- request helpers ---------------------------------------------------------- */

json_t *body_object(request *req, response *resp)
{
	json_error_t err;
	json_t *root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
	if (!root) {
		char message[JSON_ERROR_TEXT_LENGTH + 64];
		snprintf(message, sizeof(message), "malformed JSON at line %d, column %d: %s",
			 err.line, err.column, err.text);
		respond_error(resp, 400, concert_error_name(CONCERT_EINVAL), message);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		respond_error(resp, 400, concert_error_name(CONCERT_EINVAL),
			      "the body must be a JSON object");
		return NULL;
	}
	return root;
}

static void respond_member_error(response *resp, const char *name, const char *what)
{
	char message[128];
	snprintf(message, sizeof(message), "\"%s\" %s", name, what);
	respond_error(resp, 400, concert_error_name(CONCERT_EINVAL), message);
}

bool member_string(json_t *obj, const char *name, const char **out, response *resp)
{
	json_t *v = json_object_get(obj, name);
	if (!v) {
		respond_member_error(resp, name, "is required");
		return false;
	}
	if (!json_is_string(v)) {
		respond_member_error(resp, name, "must be a string");
		return false;
	}
	*out = json_string_value(v);
	return true;
}

bool member_int(json_t *obj, const char *name, int64_t *out, response *resp)
{
	json_t *v = json_object_get(obj, name);
	if (!v) {
		respond_member_error(resp, name, "is required");
		return false;
	}
	if (!json_is_integer(v)) {
		respond_member_error(resp, name, "must be an integer");
		return false;
	}
	*out = (int64_t)json_integer_value(v);
	return true;
}

bool param_id(request *req, int i, const char *what, int64_t *out, response *resp)
{
	const char *s = req->params[i];
	size_t n = req->param_len[i];
	int64_t v = 0;
	bool ok = n > 0 && n <= 19;
	for (size_t k = 0; ok && k < n; k++) {
		if (s[k] < '0' || s[k] > '9' || v > (INT64_MAX - (s[k] - '0')) / 10)
			ok = false;
		else
			v = v * 10 + (s[k] - '0');
	}
	if (!ok || v <= 0) {
		char message[96];
		snprintf(message, sizeof(message), "%s must be a positive integer", what);
		respond_error(resp, 400, concert_error_name(CONCERT_EINVAL), message);
		return false;
	}
	*out = v;
	return true;
}

bool param_string(request *req, int i, const char *what, char *out, size_t out_size,
		  response *resp)
{
	if (!url_decode(out, out_size, req->params[i], req->param_len[i], false)) {
		char message[128];
		snprintf(message, sizeof(message),
			 "%s must be at most %zu bytes of UTF-8 without NUL", what, out_size - 2);
		respond_error(resp, 400, concert_error_name(CONCERT_EINVAL), message);
		return false;
	}
	return true;
}

bool header_idempotency_key(request *req, const char **out, response *resp)
{
	const char *key = request_header(req, "Idempotency-Key");
	if (key && !*key) {
		respond_error(resp, 400, concert_error_name(CONCERT_EINVAL),
			      "Idempotency-Key must not be empty");
		return false;
	}
	*out = key;
	return true;
}

const char *header_queue_token(request *req)
{
	return request_header(req, "X-QUEUE-TOKEN");
}

/* ---- operational endpoints ----------------------------------------------------- */

static void serve_asset(request *req, response *resp, const char *path)
{
	(void)req;
	for (size_t i = 0; i < static_asset_count; i++) {
		if (strcmp(static_assets[i].path, path) == 0) {
			resp->status = 200;
			resp->body = (char *)static_assets[i].data;
			resp->body_len = static_assets[i].size;
			resp->body_static = true;
			resp->content_type = static_assets[i].content_type;
			resp->cache_control = "no-cache";
			return;
		}
	}
	respond_error(resp, 404, concert_error_name(CONCERT_ENOTFOUND), "no such file");
}

static void page_index(request *req, response *resp)
{
	serve_asset(req, resp, "index.html");
}

static void page_static(request *req, response *resp)
{
	char name[128];
	if (!url_decode(name, sizeof(name), req->params[0], req->param_len[0], false)) {
		respond_error(resp, 404, concert_error_name(CONCERT_ENOTFOUND), "no such file");
		return;
	}
	serve_asset(req, resp, name);
}

static void health(request *req, response *resp)
{
	app *a = req->app;
	jsonw w;
	jsonw_init(&w);
	jsonw_object_begin(&w);
	int status = 200;
	if (atomic_load(&a->draining)) {
		status = 503;
		jsonw_kv_string(&w, "status", "draining");
	} else {
		int rc = concert_engine_health(a->engine);
		if (rc < 0) {
			status = 503;
			jsonw_kv_string(&w, "status", "unavailable");
			jsonw_kv_string(&w, "error", concert_error_name(rc));
			jsonw_kv_string(&w, "message", concert_error_last()->message);
		} else {
			jsonw_kv_string(&w, "status", "ok");
		}
	}
	jsonw_kv_string(&w, "version", concert_version());
	jsonw_object_end(&w);
	respond_json(resp, status, &w);
	if (status == 503)
		resp->retry_after = 1;
}

static void metrics_page(request *req, response *resp)
{
	jsonw w;
	jsonw_init(&w);
	metrics_render(req->app, &w);
	respond_json(resp, 200, &w);
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/*
 * TEST FACILITY, present only with --test-clock: the engine's clock is a
 * number the tests set, so expiry can be tested without sleeping.
 */
static void test_clock_reply(request *req, response *resp)
{
	int64_t now = atomic_load(&req->app->test_now);
	jsonw w;
	jsonw_init(&w);
	jsonw_object_begin(&w);
	jsonw_kv_int(&w, "nowMs", now);
	jsonw_kv_time(&w, "now", now);
	jsonw_object_end(&w);
	respond_json(resp, 200, &w);
}

static void test_clock_set(request *req, response *resp)
{
	json_t *body = body_object(req, resp);
	if (!body)
		return;
	json_t *now = json_object_get(body, "nowMs"), *advance = json_object_get(body, "advanceMs");
	if (now && json_is_integer(now)) {
		atomic_store(&req->app->test_now, (int64_t)json_integer_value(now));
		test_clock_reply(req, resp);
	} else if (advance && json_is_integer(advance)) {
		atomic_fetch_add(&req->app->test_now, (int64_t)json_integer_value(advance));
		test_clock_reply(req, resp);
	} else {
		respond_error(resp, 400, concert_error_name(CONCERT_EINVAL),
			      "give \"nowMs\" or \"advanceMs\" as an integer");
	}
	json_decref(body);
}

static void test_audit(request *req, response *resp)
{
	concert_audit *audit = NULL;
	int rc = concert_engine_audit(req->app->engine, &audit);
	if (rc < 0) {
		respond_engine_error(resp, rc);
		return;
	}
	jsonw w;
	jsonw_init(&w);
	jsonw_object_begin(&w);
	jsonw_kv_int(&w, "totalBalance", audit->total_balance);
	jsonw_kv_int(&w, "totalCharges", audit->total_charges);
	jsonw_kv_int(&w, "totalPayments", audit->total_payments);
	jsonw_kv_int(&w, "totalRefunds", audit->total_refunds);
	jsonw_kv_int(&w, "wallets", audit->wallets);
	jsonw_kv_int(&w, "walletMismatches", audit->wallet_mismatches);
	jsonw_kv_int(&w, "reservedSeats", audit->reserved_seats);
	jsonw_kv_int(&w, "seatMismatches", audit->seat_mismatches);
	jsonw_kv_int(&w, "reservations", audit->reservations);
	jsonw_kv_int(&w, "paymentMismatches", audit->payment_mismatches);
	jsonw_object_end(&w);
	concert_free(audit);
	respond_json(resp, 200, &w);
}

/* ---- the route table ----------------------------------------------------------- */

typedef struct route {
	http_method method;
	const char *label;     /* "METHOD /pattern": the metrics label */
	route_handler handler;
	bool test_only;
} route;

static const route routes[] = {
	{ HTTP_GET, "GET /", page_index, false },
	{ HTTP_GET, "GET /static/{file}", page_static, false },
	{ HTTP_GET, "GET /health", health, false },
	{ HTTP_GET, "GET /metrics", metrics_page, false },
	{ HTTP_POST, "POST /v1/queue/tokens", api_queue_enter, false },
	{ HTTP_GET, "GET /v1/queue/tokens/me", api_queue_me, false },
	{ HTTP_DELETE, "DELETE /v1/queue/tokens/me", api_queue_leave, false },
	{ HTTP_GET, "GET /v1/concerts", api_concerts, false },
	{ HTTP_GET, "GET /v1/concerts/{id}/schedules", api_schedules, false },
	{ HTTP_GET, "GET /v1/schedules/{id}/seats", api_seats, false },
	{ HTTP_POST, "POST /v1/holds", api_hold_create, false },
	{ HTTP_GET, "GET /v1/holds/{id}", api_hold_get, false },
	{ HTTP_DELETE, "DELETE /v1/holds/{id}", api_hold_release, false },
	{ HTTP_POST, "POST /v1/holds/{id}/extend", api_hold_extend, false },
	{ HTTP_POST, "POST /v1/wallets/{userId}/charge", api_wallet_charge, false },
	{ HTTP_GET, "GET /v1/wallets/{userId}", api_wallet_get, false },
	{ HTTP_GET, "GET /v1/wallets/{userId}/transactions", api_wallet_transactions, false },
	{ HTTP_POST, "POST /v1/payments", api_payment_create, false },
	{ HTTP_GET, "GET /v1/reservations/{id}", api_reservation_get, false },
	{ HTTP_POST, "POST /v1/reservations/{id}/cancel", api_reservation_cancel, false },
	{ HTTP_GET, "GET /_test/clock", test_clock_reply, true },
	{ HTTP_POST, "POST /_test/clock", test_clock_set, true },
	{ HTTP_GET, "GET /_test/audit", test_audit, true },
};

#define ROUTE_COUNT (sizeof(routes) / sizeof(routes[0]))
_Static_assert(ROUTE_COUNT <= METRICS_ROUTES_MAX, "raise METRICS_ROUTES_MAX");

size_t routes_count(void)
{
	return ROUTE_COUNT;
}

const char *routes_label(size_t index)
{
	return index < ROUTE_COUNT ? routes[index].label : "unmatched";
}

static const char *method_name(http_method m)
{
	static const char *const names[] = { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
		"OPTIONS", "OTHER" };
	return names[m];
}

/* Matches `path` against the pattern part of a label; {x} takes one
 * non-empty segment and is returned through req->params. */
static bool path_matches(const char *label, const char *path, request *req)
{
	const char *p = strchr(label, ' ') + 1;
	const char *s = path;
	int param = 0;
	while (*p && *s) {
		if (*p == '{') {
			const char *end = strchr(s, '/');
			size_t n = end ? (size_t)(end - s) : strlen(s);
			if (n == 0 || param >= HTTP_PARAMS_MAX)
				return false;
			req->params[param] = s;
			req->param_len[param++] = n;
			s += n;
			p = strchr(p, '}') + 1;
		} else if (*p++ != *s++) {
			return false;
		}
	}
	return *p == '\0' && *s == '\0';
}

static void not_found(request *req, response *resp)
{
	(void)req;
	respond_error(resp, 404, concert_error_name(CONCERT_ENOTFOUND), "no such endpoint");
}

static void method_not_allowed(request *req, response *resp)
{
	char message[96];
	snprintf(message, sizeof(message), "%s is not allowed here", method_name(req->method));
	respond_error(resp, 405, "method_not_allowed", message);
	resp->allow = req->allow;
}

route_handler routes_find(request *req, size_t *out_route)
{
	http_method m = req->method == HTTP_HEAD ? HTTP_GET : req->method;
	size_t allow_len = 0;
	char *allow = req->allow;
	allow[0] = '\0';
	*out_route = ROUTE_COUNT;
	for (size_t i = 0; i < ROUTE_COUNT; i++) {
		const route *r = &routes[i];
		if (r->test_only && !req->app->test_clock)
			continue;
		if (!path_matches(r->label, req->path, req))
			continue;
		if (r->method == m) {
			*out_route = i;
			return r->handler;
		}
		int n = snprintf(allow + allow_len, sizeof(req->allow) - allow_len, "%s%s",
				 allow_len ? ", " : "",
				 r->method == HTTP_GET ? "GET, HEAD" : method_name(r->method));
		if (n > 0 && (size_t)n < sizeof(req->allow) - allow_len)
			allow_len += (size_t)n;
	}
	return allow_len ? method_not_allowed : not_found;
}
