/*
 * Error codes, their texts and the thread-local last error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"

#define MESSAGE_MAX 256

typedef struct error_state {
	concert_error pub;
	char message[MESSAGE_MAX];
	int32_t conflicts[CONCERT_HOLD_SEATS_MAX];
} error_state;

static _Thread_local error_state last_error;

static const struct {
	const char *name;
	const char *text;
} error_table[CONCERT_ERROR_COUNT] = {
	{ "ok", "success" },
	{ "invalid_argument", "invalid argument" },
	{ "out_of_memory", "out of memory" },
	{ "not_found", "not found" },
	{ "already_exists", "already exists" },
	{ "seat_unavailable", "seat unavailable" },
	{ "expired", "expired" },
	{ "invalid_token", "missing, forged or foreign queue token" },
	{ "token_not_active", "queue token not active yet" },
	{ "insufficient_funds", "insufficient funds" },
	{ "idempotency_conflict", "idempotency key reused with different parameters" },
	{ "invalid_state", "invalid state for this operation" },
	{ "limit_exceeded", "policy limit exceeded" },
	{ "reservation_closed", "outside the reservation window" },
	{ "amount_overflow", "amount would overflow the balance" },
	{ "backend_unavailable", "backend unavailable" },
	{ "corrupt", "stored data is corrupt" },
	{ "io_error", "I/O error" },
	{ "unsupported_version", "unsupported version" },
	{ "forbidden", "not the owner" },
	{ "internal", "internal error" },
};

static int code_index(int code)
{
	return (code <= 0 && code > -CONCERT_ERROR_COUNT) ? -code : -1;
}

const char *concert_strerror(int code)
{
	int i = code_index(code);
	return i < 0 ? "unknown error" : error_table[i].text;
}

const char *concert_error_name(int code)
{
	int i = code_index(code);
	return i < 0 ? "unknown" : error_table[i].name;
}

const concert_error *concert_error_last(void)
{
	error_state *e = &last_error;
	if (!e->pub.message)
		e->pub.message = "";
	return &e->pub;
}

void concert_error_clear(void)
{
	error_state *e = &last_error;
	e->pub.code = 0;
	e->pub.message = "";
	e->pub.conflict_count = 0;
	e->pub.conflicts = NULL;
}

int concert_sys_error(int code, const char *message)
{
	error_state *e = &last_error;
	e->pub.code = code;
	e->pub.conflict_count = 0;
	e->pub.conflicts = NULL;
	snprintf(e->message, sizeof(e->message), "%s", message ? message : concert_strerror(code));
	e->pub.message = e->message;
	return code;
}

int concert_sys_errorf(int code, const char *fmt, ...)
{
	error_state *e = &last_error;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	e->pub.code = code;
	e->pub.conflict_count = 0;
	e->pub.conflicts = NULL;
	e->pub.message = e->message;
	return code;
}

int concert_sys_error_conflicts(const int32_t *seat_nos, size_t count)
{
	error_state *e = &last_error;
	size_t n = count < CONCERT_HOLD_SEATS_MAX ? count : CONCERT_HOLD_SEATS_MAX;
	int len = snprintf(e->message, sizeof(e->message), "seat unavailable:");
	for (size_t i = 0; i < n; i++) {
		e->conflicts[i] = seat_nos[i];
		if (len >= 0 && (size_t)len < sizeof(e->message))
			len += snprintf(e->message + len, sizeof(e->message) - (size_t)len,
					"%s%d", i ? "," : " ", (int)seat_nos[i]);
	}
	e->pub.code = CONCERT_ESEAT_UNAVAILABLE;
	e->pub.message = e->message;
	e->pub.conflict_count = n;
	e->pub.conflicts = n ? e->conflicts : NULL;
	return CONCERT_ESEAT_UNAVAILABLE;
}
