/*
 * The libmicrohttpd glue: one exchange per request, the body limit, request
 * ids, the access log, metrics and the graceful stop.
 *
 * A handler runs once the whole body is in (never on the first call of the
 * access callback): answering on the first call makes libmicrohttpd close
 * the connection, which would cost keep-alive on every GET.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "jsonw.h"

#define PATH_COPY_MAX 2048
/* A chunked body over the limit is read and dropped up to this many bytes
 * so the client still gets its 413 (libmicrohttpd 0.9 cannot answer in the
 * middle of an upload); past it the connection is closed. */
#define DISCARD_MAX (1024 * 1024)

typedef struct exchange {
	request req;
	app *app;
	char method[16];
	char path[PATH_COPY_MAX + 1];
	char request_id[HTTP_REQUEST_ID_MAX + 1];
	char *body;
	size_t body_len;
	size_t body_cap;
	route_handler handler;
	size_t discarded;
	bool too_large;
	bool answered;
	int status;
	size_t bytes;
	size_t route;
	uint64_t started_ns;
} exchange;

/* ---- small helpers used by the handlers --------------------------------- */

const char *request_header(const request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

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

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t len;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

bool url_decode(char *out, size_t out_size, const char *s, size_t n, bool plus_is_space)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return false;
			int h = hex_value(s[i + 1]), l = hex_value(s[i + 2]);
			if (h < 0 || l < 0)
				return false;
			c = (char)(h * 16 + l);
			i += 2;
		} else if (c == '+' && plus_is_space) {
			c = ' ';
		}
		if (c == '\0' || o + 1 >= out_size)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return utf8_valid((const unsigned char *)out, o);
}

bool request_query(const request *req, const char *name, char *out, size_t out_size)
{
	/* libmicrohttpd has already turned '+' into ' ' in arguments; our unescape
	 * callback leaves the %XX escapes to url_decode. */
	const char *v = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
	return v && url_decode(out, out_size, v, strlen(v), false);
}

/* ---- request ids ------------------------------------------------------------ */

static bool request_id_acceptable(const char *id)
{
	size_t n = 0;
	for (; id[n]; n++) {
		char c = id[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '-' || c == '_' || c == '.' || c == ':';
		if (!ok || n >= HTTP_REQUEST_ID_MAX)
			return false;
	}
	return n > 0;
}

/* splitmix64 over a per-thread random seed: unique enough for log correlation
 * and free of locks. */
static void new_request_id(char out[HTTP_REQUEST_ID_MAX + 1])
{
	static _Thread_local uint64_t state;
	static _Thread_local bool seeded;
	if (!seeded) {
		if (getrandom(&state, sizeof(state), 0) != (ssize_t)sizeof(state))
			state = mono_ns() ^ (uint64_t)(uintptr_t)&state;
		seeded = true;
	}
	uint64_t z = (state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	z ^= z >> 31;
	snprintf(out, HTTP_REQUEST_ID_MAX + 1, "%016llx", (unsigned long long)z);
}

/* ---- the exchange ----------------------------------------------------------- */

static http_method parse_method(const char *m)
{
	static const struct {
		const char *name;
		http_method method;
	} methods[] = {
		{ "GET", HTTP_GET }, { "HEAD", HTTP_HEAD }, { "POST", HTTP_POST },
		{ "PUT", HTTP_PUT }, { "PATCH", HTTP_PATCH }, { "DELETE", HTTP_DELETE },
		{ "OPTIONS", HTTP_OPTIONS },
	};
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(m, methods[i].name) == 0)
			return methods[i].method;
	return HTTP_OTHER;
}

static void path_too_long(request *req, response *resp)
{
	(void)req;
	char message[64];
	snprintf(message, sizeof(message), "the path is longer than %d bytes", PATH_COPY_MAX);
	respond_error(resp, 414, "uri_too_long", message);
}

static exchange *exchange_new(app *a, struct MHD_Connection *conn, const char *url,
			      const char *method)
{
	exchange *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->app = a;
	x->started_ns = mono_ns();
	x->route = routes_count();
	snprintf(x->method, sizeof(x->method), "%s", method);
	snprintf(x->path, sizeof(x->path), "%s", url);
	const char *id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
	if (id && request_id_acceptable(id))
		snprintf(x->request_id, sizeof(x->request_id), "%s", id);
	else
		new_request_id(x->request_id);
	x->req.app = a;
	x->req.conn = conn;
	x->req.method = parse_method(method);
	x->req.path = x->path;
	x->req.request_id = x->request_id;
	if (strlen(url) > PATH_COPY_MAX)
		x->handler = path_too_long; /* never route a truncated path */
	else
		x->handler = routes_find(&x->req, &x->route);
	return x;
}

static bool append_body(exchange *x, const char *data, size_t n)
{
	if (x->body_len + n + 1 > x->body_cap) {
		size_t cap = x->body_cap ? x->body_cap : 1024;
		while (cap < x->body_len + n + 1)
			cap *= 2;
		char *body = realloc(x->body, cap);
		if (!body)
			return false;
		x->body = body;
		x->body_cap = cap;
	}
	memcpy(x->body + x->body_len, data, n);
	x->body_len += n;
	x->body[x->body_len] = '\0';
	return true;
}

static enum MHD_Result send_response(exchange *x, response *resp)
{
	struct MHD_Response *r;
	if (resp->body_static || !resp->body)
		r = MHD_create_response_from_buffer(resp->body_len, resp->body ? resp->body : (char *)"",
						    MHD_RESPMEM_PERSISTENT);
	else
		r = MHD_create_response_from_buffer(resp->body_len, resp->body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		if (!resp->body_static)
			free(resp->body);
		return MHD_NO;
	}
	if (resp->status != 204 && resp->content_type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
	MHD_add_response_header(r, "X-Request-Id", x->request_id);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
				resp->cache_control ? resp->cache_control : "no-store");
	if (resp->allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, resp->allow);
	if (resp->retry_after > 0) {
		char secs[16];
		snprintf(secs, sizeof(secs), "%d", resp->retry_after);
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, secs);
	}
	if (atomic_load_explicit(&x->app->draining, memory_order_relaxed))
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	x->answered = true;
	x->status = resp->status;
	x->bytes = resp->body_len;
	enum MHD_Result ret = MHD_queue_response(x->req.conn, (unsigned)resp->status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Answered on the first call (a Content-Length over the limit), libmicrohttpd
 * closes the connection after the 413 instead of reading the body. */
static enum MHD_Result answer_too_large(exchange *x)
{
	response resp = { 0 };
	char message[96];
	snprintf(message, sizeof(message), "request body is larger than %d bytes", HTTP_BODY_LIMIT);
	respond_error(&resp, 413, "payload_too_large", message);
	return send_response(x, &resp);
}

static bool content_length_too_large(const char *value)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(value, &end, 10);
	return errno == ERANGE || (end != value && n > HTTP_BODY_LIMIT);
}

static enum MHD_Result answer(exchange *x)
{
	response resp = { 0 };
	x->req.body = x->body ? x->body : "";
	x->req.body_len = x->body_len;
	x->handler(&x->req, &resp);
	return send_response(x, &resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	app *a = cls;
	exchange *x = *con_cls;
	(void)version;
	if (!x) {
		x = exchange_new(a, conn, url, method);
		if (!x)
			return MHD_NO;
		*con_cls = x;
		atomic_fetch_add_explicit(&a->in_flight, 1, memory_order_relaxed);
		const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								  MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (length && content_length_too_large(length))
			return answer_too_large(x);
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (x->answered)
			return MHD_YES;
		if (!x->too_large && x->body_len + n > HTTP_BODY_LIMIT) {
			x->too_large = true;
			free(x->body);
			x->body = NULL;
			x->body_len = x->body_cap = 0;
		}
		if (x->too_large) {
			x->discarded += n;
			return x->discarded <= DISCARD_MAX ? MHD_YES : MHD_NO;
		}
		return append_body(x, upload_data, n) ? MHD_YES : MHD_NO;
	}
	if (x->answered)
		return MHD_YES;
	return x->too_large ? answer_too_large(x) : answer(x);
}

/* ---- after the response: metrics and the access log ------------------------ */

static const char *termination_name(enum MHD_RequestTerminationCode toe)
{
	switch (toe) {
	case MHD_REQUEST_TERMINATED_COMPLETED_OK: return "completed";
	case MHD_REQUEST_TERMINATED_WITH_ERROR: return "error";
	case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED: return "timeout";
	case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN: return "shutdown";
	case MHD_REQUEST_TERMINATED_READ_ERROR: return "read_error";
	case MHD_REQUEST_TERMINATED_CLIENT_ABORT: return "client_abort";
	default: return "unknown";
	}
}

static void remote_address(struct MHD_Connection *conn, char out[INET6_ADDRSTRLEN])
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	out[0] = '\0';
	if (!info || !info->client_addr)
		return;
	const struct sockaddr *sa = info->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
			  INET6_ADDRSTRLEN);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
			  INET6_ADDRSTRLEN);
}

static void access_log(exchange *x, int status, uint64_t latency_ns,
		       enum MHD_RequestTerminationCode toe)
{
	char remote[INET6_ADDRSTRLEN];
	remote_address(x->req.conn, remote);
	jsonw w;
	jsonw_init(&w);
	w.ascii = true;
	jsonw_object_begin(&w);
	jsonw_kv_time(&w, "time", wall_ms());
	jsonw_kv_string(&w, "level", "info");
	jsonw_kv_string(&w, "source", "access");
	jsonw_kv_string(&w, "method", x->method);
	jsonw_kv_string(&w, "path", x->path);
	jsonw_kv_string(&w, "route", x->route < routes_count() ? routes_label(x->route) : "unmatched");
	jsonw_kv_int(&w, "status", status);
	jsonw_key(&w, "latency_ms");
	jsonw_fixed(&w, (double)latency_ns / 1e6, 3);
	jsonw_kv_int(&w, "bytes", (int64_t)x->bytes);
	jsonw_kv_string(&w, "request_id", x->request_id);
	jsonw_kv_string(&w, "remote", remote);
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		jsonw_kv_string(&w, "termination", termination_name(toe));
	jsonw_object_end(&w);
	jsonw_raw(&w, "\n", 1);
	size_t len;
	char *line = jsonw_take(&w, &len);
	if (line) {
		ssize_t n = write(x->app->access_log_fd, line, len);
		(void)n;
		free(line);
	}
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	app *a = cls;
	exchange *x = *con_cls;
	(void)conn;
	if (!x)
		return;
	*con_cls = NULL;
	uint64_t latency = mono_ns() - x->started_ns;
	int status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? x->status : 0;
	metrics_observe(&a->metrics, x->route, status, latency);
	if (a->access_log_fd >= 0)
		access_log(x, status, latency, toe);
	free(x->body);
	free(x);
	atomic_fetch_sub_explicit(&a->in_flight, 1, memory_order_relaxed);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	app *a = cls;
	(void)conn;
	(void)socket_context;
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		atomic_fetch_add_explicit(&a->connections, 1, memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(&a->connections, 1, memory_order_relaxed);
}

/* Leaves %XX escapes in the path and in query arguments: path segments are
 * decoded one by one after routing, so "%2F" in a user id stays inside its
 * segment. */
static size_t keep_escapes(void *cls, struct MHD_Connection *conn, char *s)
{
	(void)cls;
	(void)conn;
	return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char message[512];
	vsnprintf(message, sizeof(message), fmt, ap);
	size_t n = strlen(message);
	while (n && (message[n - 1] == '\n' || message[n - 1] == '\r'))
		message[--n] = '\0';
	log_line(cls, CONCERT_LOG_WARN, "libmicrohttpd", "detail", message);
}

struct MHD_Daemon *server_start(app *a, const server_config *cfg)
{
	/* poll, not epoll: with an epoll thread pool, libmicrohttpd 0.9.75's
	 * MHD_quiesce_daemon races the woken workers to remove the listen
	 * socket from their epoll sets, and the loser panics (aborts) at
	 * shutdown. A pool of poll workers quiesces without epoll_ctl. */
	unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_TURBO |
			 MHD_USE_ERROR_LOG;
	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, a,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)cfg->listen_fd,
		MHD_OPTION_THREAD_POOL_SIZE, cfg->threads,
		MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_seconds,
		MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, a,
		MHD_OPTION_UNESCAPE_CALLBACK, keep_escapes, NULL,
		MHD_OPTION_END);
}

void server_shutdown(app *a, struct MHD_Daemon *daemon, unsigned grace_ms,
		     bool (*interrupted)(void))
{
	atomic_store(&a->draining, true);
	MHD_socket listen_fd = MHD_quiesce_daemon(daemon);
	/* Quiesced, the socket still completes handshakes into its backlog, and
	 * those clients would wait for the whole drain to be reset. Shut down,
	 * it refuses them at once (so they retry elsewhere), while the fd stays
	 * valid until the daemon has stopped, as libmicrohttpd requires. */
	if (listen_fd != MHD_INVALID_SOCKET)
		shutdown(listen_fd, SHUT_RDWR);
	uint64_t deadline = mono_ns() + (uint64_t)grace_ms * 1000000u;
	while (atomic_load(&a->in_flight) > 0 && mono_ns() < deadline && !interrupted()) {
		struct timespec pause = { 0, 5 * 1000 * 1000 };
		nanosleep(&pause, NULL);
	}
	long left = atomic_load(&a->in_flight);
	if (left > 0) {
		char n[24];
		snprintf(n, sizeof(n), "%ld", left);
		log_line(a, CONCERT_LOG_WARN, "stopping with requests still in flight", "requests", n);
	}
	MHD_stop_daemon(daemon);
	if (listen_fd != MHD_INVALID_SOCKET)
		close(listen_fd);
}
