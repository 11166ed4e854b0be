/*
 * The example HTTP server: shared types.
 *
 * The server is a thin host: it parses HTTP and JSON, calls libconcert and
 * turns its results and error codes into responses. Every decision about
 * seats, tokens, money and time is the library's.
 */
#ifndef HTTP_SERVER_H
#define HTTP_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <concert.h>

#include "metrics.h"

/** Largest request body accepted; larger ones get 413. */
#define HTTP_BODY_LIMIT (64 * 1024)
/** Longest X-Request-Id echoed back; longer or odd ones are replaced. */
#define HTTP_REQUEST_ID_MAX 64
/** Most {placeholders} in a route pattern. */
#define HTTP_PARAMS_MAX 2

typedef enum http_method {
	HTTP_GET,
	HTTP_HEAD,
	HTTP_POST,
	HTTP_PUT,
	HTTP_PATCH,
	HTTP_DELETE,
	HTTP_OPTIONS,
	HTTP_OTHER
} http_method;

/** Process-wide state shared by every worker thread. */
typedef struct app {
	concert_engine *engine;
	metrics metrics;
	int access_log_fd;          /* -1: no access log */
	int log_level;              /* concert_log_level: diagnostics above it are dropped */
	bool test_clock;            /* the /_test/ endpoints exist (a test facility) */
	_Atomic int64_t test_now;   /* the engine's time in ms when test_clock */
	atomic_bool draining;       /* shutting down: health 503, Connection: close */
	atomic_long in_flight;      /* requests between their first byte and their end */
	atomic_long connections;
	int64_t started_at;         /* ms since the epoch, wall clock */
} app;

typedef struct request {
	app *app;
	struct MHD_Connection *conn;
	http_method method;
	const char *path;                     /* as received, still percent-encoded */
	const char *params[HTTP_PARAMS_MAX];  /* raw {placeholder} segments of the route */
	size_t param_len[HTTP_PARAMS_MAX];
	const char *body;                     /* NUL-terminated; body_len bytes */
	size_t body_len;
	const char *request_id;
	char allow[64];                       /* methods of the path, for a 405 */
} request;

typedef struct response {
	int status;
	char *body;                 /* malloc'ed unless body_static */
	size_t body_len;
	bool body_static;
	const char *content_type;
	const char *allow;          /* Allow header for 405 */
	const char *cache_control;  /* NULL: "no-store" */
	int retry_after;            /* seconds; 0: no Retry-After header */
} response;

typedef void (*route_handler)(request *req, response *resp);

/* routes.c: finds the handler for a request; *out_route gets the metrics
 * route index (routes_count() for "no route"). */
route_handler routes_find(request *req, size_t *out_route);
size_t routes_count(void);
const char *routes_label(size_t index);

/* Responses shared by the server glue and the handlers (routes.c). */
void respond_error(response *resp, int status, const char *error, const char *message);
/* Maps a libconcert error code to its status and body (see docs/http.md). */
void respond_engine_error(response *resp, int code);
int status_for_engine_error(int code);

/* server.c */
const char *request_header(const request *req, const char *name);
/* Percent-decodes `n` bytes of `s` into `out` (`out_size` bytes with the NUL).
 * Returns false for bad escapes, NUL bytes, invalid UTF-8 or overflow. */
bool url_decode(char *out, size_t out_size, const char *s, size_t n, bool plus_is_space);
/* A query argument, percent-decoded into out; false if absent or invalid. */
bool request_query(const request *req, const char *name, char *out, size_t out_size);

/* log.c: diagnostics as JSON lines on stderr. */
void log_line(const app *a, int level, const char *msg, const char *key, const char *value);
void engine_log(void *ctx, int level, const char *message);

/* Milliseconds since the epoch (wall clock) and monotonic nanoseconds. */
int64_t wall_ms(void);
uint64_t mono_ns(void);

/* static_assets.c (generated from static/ at build time). */
typedef struct static_asset {
	const char *path;
	const char *content_type;
	const unsigned char *data;
	size_t size;
} static_asset;
extern const static_asset static_assets[];
extern const size_t static_asset_count;

/* server.c: the libmicrohttpd daemon. */
typedef struct server_config {
	int listen_fd;              /* bound and listening */
	unsigned threads;           /* worker threads, each with its own epoll loop */
	unsigned timeout_seconds;   /* a connection idle this long is closed */
	unsigned max_connections;
} server_config;

struct MHD_Daemon *server_start(app *a, const server_config *cfg);
/* Stops accepting, lets in-flight requests finish (up to `grace_ms`, or until
 * `interrupted` returns true), then stops the daemon. */
void server_shutdown(app *a, struct MHD_Daemon *daemon, unsigned grace_ms,
	bool (*interrupted)(void));

#endif
