/*
 * redis: URIs.
 *
 *   redis://[[user]:password@]host[:port][/db][?option=value&...]
 *   redis:///path/to/redis.sock[?db=N&option=value&...]      (unix socket)
 *
 * host may be an IPv6 literal in brackets; user and password may be
 * percent-encoded. Options: db, pool (connections, 1..1024, default 8; more
 * callers than that share them, pipelined), connect_timeout_ms (default
 * 1000), timeout_ms (every command, default 1000), prefix (prepended to
 * every key, [A-Za-z0-9:._-], at most 64 bytes).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "storage/redis/redis.h"

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Copies s[0..n) with %XX decoded; NULL (with the error set) when malformed. */
static char *decode(const char *s, size_t n, const char *what)
{
	char *out = malloc(n + 1);
	if (!out) {
		concert_sys_error(CONCERT_ENOMEM, NULL);
		return NULL;
	}
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			out[j++] = s[i];
			continue;
		}
		int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
		int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
		/* %00 would cut the C string short. */
		if (lo >= 0 && (hi | lo) != 0) {
			out[j++] = (char)(hi * 16 + lo);
			i += 2;
			continue;
		}
		free(out);
		concert_sys_errorf(CONCERT_EINVAL, "redis URI: bad %%-escape in the %s", what);
		return NULL;
	}
	out[j] = '\0';
	return out;
}

/* A decimal in [min, max], the whole of s[0..n). */
static int parse_int(const char *s, size_t n, long min, long max, int *out, const char *what)
{
	char buf[24];
	if (n == 0 || n >= sizeof(buf))
		return concert_sys_errorf(CONCERT_EINVAL, "redis URI: bad %s", what);
	memcpy(buf, s, n);
	buf[n] = '\0';
	char *end;
	errno = 0;
	long v = strtol(buf, &end, 10);
	if (errno || *end || buf[0] < '0' || buf[0] > '9' || v < min || v > max)
		return concert_sys_errorf(CONCERT_EINVAL, "redis URI: bad %s '%s'", what, buf);
	*out = (int)v;
	return 0;
}

static int prefix_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == ':' || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static int parse_option(redis_uri *u, const char *opt, size_t n)
{
	const char *eq = memchr(opt, '=', n);
	if (!eq)
		return concert_sys_errorf(CONCERT_EINVAL, "redis URI: option '%.*s' has no value", (int)n, opt);
	size_t klen = (size_t)(eq - opt), vlen = n - klen - 1;
	const char *v = eq + 1;
#define KEY_IS(k) (klen == sizeof(k) - 1 && memcmp(opt, k, klen) == 0)
	if (KEY_IS("db"))
		return parse_int(v, vlen, 0, INT_MAX, &u->db, "db");
	if (KEY_IS("pool"))
		return parse_int(v, vlen, 1, 1024, &u->pool, "pool");
	if (KEY_IS("connect_timeout_ms"))
		return parse_int(v, vlen, 1, 600000, &u->connect_timeout_ms, "connect_timeout_ms");
	if (KEY_IS("timeout_ms"))
		return parse_int(v, vlen, 1, 600000, &u->timeout_ms, "timeout_ms");
	if (KEY_IS("prefix")) {
		if (vlen > REDIS_PREFIX_MAX || !prefix_ok(v, vlen))
			return concert_sys_error(CONCERT_EINVAL,
				"redis URI: prefix must be at most 64 of [A-Za-z0-9:._-]");
		memcpy(u->prefix, v, vlen);
		u->prefix[vlen] = '\0';
		return 0;
	}
#undef KEY_IS
	return concert_sys_errorf(CONCERT_EINVAL, "redis URI: unknown option '%.*s'", (int)klen, opt);
}

static int parse_query(redis_uri *u, const char *q)
{
	while (q && *q) {
		size_t n = strcspn(q, "&");
		int rc = parse_option(u, q, n);
		if (rc < 0)
			return rc;
		q += n;
		if (*q == '&')
			q++;
	}
	return 0;
}

static int parse_userinfo(redis_uri *u, const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	size_t ulen = colon ? (size_t)(colon - s) : n;
	if (ulen) {
		u->username = decode(s, ulen, "user name");
		if (!u->username)
			return concert_error_last()->code;
	}
	if (!colon) {
		/* A lone word before '@' is the password (the old AUTH form). */
		u->password = u->username;
		u->username = NULL;
		return 0;
	}
	u->password = decode(colon + 1, n - ulen - 1, "password");
	return u->password ? 0 : concert_error_last()->code;
}

static int parse_hostport(redis_uri *u, const char *s, size_t n)
{
	const char *host = s, *port = NULL;
	size_t hlen = n;
	if (n && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close)
			return concert_sys_error(CONCERT_EINVAL, "redis URI: unclosed '[' in the host");
		host = s + 1;
		hlen = (size_t)(close - host);
		if (close + 1 < s + n) {
			if (close[1] != ':')
				return concert_sys_error(CONCERT_EINVAL, "redis URI: junk after ']'");
			port = close + 2;
		}
	} else {
		const char *colon = memchr(s, ':', n);
		if (colon) {
			hlen = (size_t)(colon - s);
			port = colon + 1;
		}
	}
	if (hlen == 0)
		return concert_sys_error(CONCERT_EINVAL, "redis URI: no host");
	u->host = strndup(host, hlen);
	if (!u->host)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	if (port)
		return parse_int(port, (size_t)(s + n - port), 1, 65535, &u->port, "port");
	return 0;
}

int redis_uri_parse(redis_uri *u, const char *uri)
{
	static const char scheme[] = "redis://";
	memset(u, 0, sizeof(*u));
	u->port = 6379;
	u->pool = 8;
	u->connect_timeout_ms = 1000;
	u->timeout_ms = 1000;
	if (!uri || strncmp(uri, scheme, sizeof(scheme) - 1) != 0)
		return concert_sys_error(CONCERT_EINVAL,
			"redis URI must be redis://host[:port][/db] or redis:///path/to.sock");
	const char *rest = uri + sizeof(scheme) - 1;
	size_t end = strcspn(rest, "?");
	const char *query = rest[end] == '?' ? rest + end + 1 : NULL;
	size_t alen = strcspn(rest, "/?");
	const char *path = rest + alen;
	size_t plen = end - alen;
	int rc = 0;
	if (alen == 0) {
		/* redis:///path/to.sock */
		if (plen < 2)
			rc = concert_sys_error(CONCERT_EINVAL, "redis URI: no host and no socket path");
		else if (!(u->path = decode(path, plen, "socket path")))
			rc = concert_error_last()->code;
	} else {
		const char *at = memchr(rest, '@', alen);
		if (at) {
			rc = parse_userinfo(u, rest, (size_t)(at - rest));
			alen -= (size_t)(at + 1 - rest);
			rest = at + 1;
		}
		if (rc == 0)
			rc = parse_hostport(u, rest, alen);
		if (rc == 0 && plen > 1)
			rc = parse_int(path + 1, plen - 1, 0, INT_MAX, &u->db, "db");
	}
	if (rc == 0)
		rc = parse_query(u, query);
	if (rc < 0)
		redis_uri_free(u);
	return rc;
}

void redis_uri_free(redis_uri *u)
{
	free(u->host);
	free(u->path);
	free(u->username);
	free(u->password);
	u->host = u->path = u->username = u->password = NULL;
}
