/*
 * A small JSON writer for responses and log lines.
 *
 * Responses are built straight into one growable buffer: the seat map is the
 * hot path, and a DOM library (jansson, cJSON) builds a tree of some 200
 * allocations for it, 5-10x slower than this (docs/http.md has the numbers).
 * Requests are parsed with jansson, which is strict about types and ranges.
 *
 * The writer inserts commas itself: call jsonw_key() before each member of an
 * object and nothing between array elements. An allocation failure makes
 * the writer "failed" (jsonw_failed); later calls are no-ops.
 */
#ifndef HTTP_JSONW_H
#define HTTP_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSONW_DEPTH_MAX 16

typedef struct jsonw {
	char *buf;
	size_t len;
	size_t cap;
	bool failed;
	int depth;
	bool need_comma[JSONW_DEPTH_MAX];
	bool after_key;
	bool ascii;  /* escape bytes >= 0x80 too: for untrusted text in log lines */
} jsonw;

void jsonw_init(jsonw *w);
void jsonw_free(jsonw *w);
/* Hands the buffer (NUL-terminated) to the caller; the writer is reset. */
char *jsonw_take(jsonw *w, size_t *out_len);
static inline bool jsonw_failed(const jsonw *w) { return w->failed; }

void jsonw_object_begin(jsonw *w);
void jsonw_object_end(jsonw *w);
void jsonw_array_begin(jsonw *w);
void jsonw_array_end(jsonw *w);
void jsonw_key(jsonw *w, const char *key);
void jsonw_string(jsonw *w, const char *s);
void jsonw_string_n(jsonw *w, const char *s, size_t n);
void jsonw_int(jsonw *w, int64_t v);
void jsonw_bool(jsonw *w, bool v);
void jsonw_null(jsonw *w);
/* A decimal with `decimals` fraction digits (for latencies in log lines). */
void jsonw_fixed(jsonw *w, double v, int decimals);
/* An RFC 3339 UTC timestamp from milliseconds since the epoch. */
void jsonw_time(jsonw *w, int64_t ms);

/* Convenience: "key": value members. */
void jsonw_kv_string(jsonw *w, const char *key, const char *s);
void jsonw_kv_int(jsonw *w, const char *key, int64_t v);
void jsonw_kv_time(jsonw *w, const char *key, int64_t ms);

/* Appends raw bytes (no comma handling): for non-JSON text such as metrics. */
void jsonw_raw(jsonw *w, const char *s, size_t n);
void jsonw_rawf(jsonw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Formats ms since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ" into out[32]. */
void format_rfc3339(char out[32], int64_t ms);

#endif
