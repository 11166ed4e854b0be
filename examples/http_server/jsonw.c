/*
 * The response writer: escaping, integers and timestamps by hand, because
 * snprintf per field costs more than everything else in a seat-map request.
 */
#include "jsonw.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JSONW_INITIAL_CAP 1024

void jsonw_init(jsonw *w)
{
	memset(w, 0, sizeof(*w));
}

void jsonw_free(jsonw *w)
{
	free(w->buf);
	jsonw_init(w);
}

static bool reserve(jsonw *w, size_t extra)
{
	if (w->failed)
		return false;
	if (w->len + extra + 1 <= w->cap)
		return true;
	size_t cap = w->cap ? w->cap : JSONW_INITIAL_CAP;
	while (cap < w->len + extra + 1)
		cap *= 2;
	char *buf = realloc(w->buf, cap);
	if (!buf) {
		w->failed = true;
		return false;
	}
	w->buf = buf;
	w->cap = cap;
	return true;
}

char *jsonw_take(jsonw *w, size_t *out_len)
{
	if (w->failed || !reserve(w, 0)) {
		jsonw_free(w);
		return NULL;
	}
	w->buf[w->len] = '\0';
	char *buf = w->buf;
	if (out_len)
		*out_len = w->len;
	jsonw_init(w);
	return buf;
}

void jsonw_raw(jsonw *w, const char *s, size_t n)
{
	if (!reserve(w, n))
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

void jsonw_rawf(jsonw *w, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		w->failed = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		jsonw_raw(w, small, (size_t)n);
		return;
	}
	if (!reserve(w, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(w->buf + w->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	w->len += (size_t)n;
}

/* Emits the separator a value needs at this point. */
static void before_value(jsonw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth > 0) {
		if (w->need_comma[w->depth - 1])
			jsonw_raw(w, ",", 1);
		w->need_comma[w->depth - 1] = true;
	}
}

static void open_container(jsonw *w, char c)
{
	before_value(w);
	if (w->depth >= JSONW_DEPTH_MAX) {
		w->failed = true;
		return;
	}
	jsonw_raw(w, &c, 1);
	w->need_comma[w->depth++] = false;
}

static void close_container(jsonw *w, char c)
{
	if (w->depth > 0)
		w->depth--;
	jsonw_raw(w, &c, 1);
}

void jsonw_object_begin(jsonw *w) { open_container(w, '{'); }
void jsonw_object_end(jsonw *w) { close_container(w, '}'); }
void jsonw_array_begin(jsonw *w) { open_container(w, '['); }
void jsonw_array_end(jsonw *w) { close_container(w, ']'); }

static void write_escaped(jsonw *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	/* Worst case: every byte becomes \u00XX. */
	if (!reserve(w, n * 6 + 2))
		return;
	char *p = w->buf + w->len;
	*p++ = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': *p++ = '\\'; *p++ = '"'; break;
		case '\\': *p++ = '\\'; *p++ = '\\'; break;
		case '\n': *p++ = '\\'; *p++ = 'n'; break;
		case '\r': *p++ = '\\'; *p++ = 'r'; break;
		case '\t': *p++ = '\\'; *p++ = 't'; break;
		default:
			if (c < 0x20 || c == 0x7f || (c >= 0x80 && w->ascii)) {
				memcpy(p, "\\u00", 4);
				p[4] = hex[c >> 4];
				p[5] = hex[c & 15];
				p += 6;
			} else {
				*p++ = (char)c;
			}
		}
	}
	*p++ = '"';
	w->len = (size_t)(p - w->buf);
}

void jsonw_key(jsonw *w, const char *key)
{
	before_value(w);
	write_escaped(w, key, strlen(key));
	jsonw_raw(w, ":", 1);
	w->after_key = true;
}

void jsonw_string_n(jsonw *w, const char *s, size_t n)
{
	before_value(w);
	write_escaped(w, s, n);
}

void jsonw_string(jsonw *w, const char *s)
{
	jsonw_string_n(w, s, strlen(s));
}

/* Writes v in decimal into the end of buf[24]; returns the first digit. */
static char *format_int(char buf[24], int64_t v)
{
	char *p = buf + 24;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	return p;
}

void jsonw_int(jsonw *w, int64_t v)
{
	char buf[24];
	char *p = format_int(buf, v);
	before_value(w);
	jsonw_raw(w, p, (size_t)(buf + 24 - p));
}

void jsonw_bool(jsonw *w, bool v)
{
	before_value(w);
	jsonw_raw(w, v ? "true" : "false", v ? 4 : 5);
}

void jsonw_null(jsonw *w)
{
	before_value(w);
	jsonw_raw(w, "null", 4);
}

void jsonw_fixed(jsonw *w, double v, int decimals)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	before_value(w);
	if (n > 0)
		jsonw_raw(w, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void put_digits(char *p, int v, int width)
{
	for (int i = width - 1; i >= 0; i--, v /= 10)
		p[i] = (char)('0' + v % 10);
}

void format_rfc3339(char out[32], int64_t ms)
{
	int64_t secs = ms / 1000, frac = ms % 1000;
	if (frac < 0) {
		frac += 1000;
		secs -= 1;
	}
	time_t t = (time_t)secs;
	struct tm tm;
	/* RFC 3339 has four-digit years; anything else is clamped to the epoch. */
	if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
		memcpy(out, "1970-01-01T00:00:00.000Z", 25);
		return;
	}
	memcpy(out, "0000-00-00T00:00:00.000Z", 25);
	put_digits(out, tm.tm_year + 1900, 4);
	put_digits(out + 5, tm.tm_mon + 1, 2);
	put_digits(out + 8, tm.tm_mday, 2);
	put_digits(out + 11, tm.tm_hour, 2);
	put_digits(out + 14, tm.tm_min, 2);
	put_digits(out + 17, tm.tm_sec, 2);
	put_digits(out + 20, (int)frac, 3);
}

void jsonw_time(jsonw *w, int64_t ms)
{
	char buf[32];
	format_rfc3339(buf, ms);
	jsonw_string(w, buf);
}

void jsonw_kv_string(jsonw *w, const char *key, const char *s)
{
	jsonw_key(w, key);
	jsonw_string(w, s);
}

void jsonw_kv_int(jsonw *w, const char *key, int64_t v)
{
	jsonw_key(w, key);
	jsonw_int(w, v);
}

void jsonw_kv_time(jsonw *w, const char *key, int64_t ms)
{
	jsonw_key(w, key);
	jsonw_time(w, ms);
}
