/*
 * concert-http-server: the seed's API server on libconcert.
 *
 * Configuration comes from flags, then CONCERT_* environment variables, then
 * defaults. One engine is opened for the process and shared by every worker
 * thread (the handle is thread-safe). SIGTERM/SIGINT stop accepting, let the
 * requests in flight finish, then close the engine.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "demo.h"
#include "server.h"

#define SECRET_MAX 4096
#define MINUTE_MS (60 * 1000)

typedef struct config {
	const char *listen;
	const char *store;
	const char *queue;
	const char *lock;
	const char *secret;
	const char *secret_file;
	const char *access_log;
	const char *log_level;
	const char *max_active;
	const char *admit_per_second;
	const char *hold_ttl;
	const char *active_ttl;
	const char *threads;
	const char *timeout;
	const char *max_connections;
	const char *shutdown_timeout;
	bool demo;
	bool test_clock;
} config;

static void usage(FILE *out)
{
	fprintf(out,
"Usage: concert-http-server [options]\n"
"\n"
"The libconcert HTTP API (docs/http.md). Every option can also be set by the\n"
"environment variable in brackets; a flag wins over the environment.\n"
"\n"
"  --listen HOST:PORT      address to serve [CONCERT_LISTEN] (127.0.0.1:8080;\n"
"                          port 0 picks a free port, printed at start)\n"
"  --store URI             store backend [CONCERT_STORE] (memory:; memory:/dir is\n"
"                          durable; postgresql://... once that backend is built)\n"
"  --queue URI             queue backend [CONCERT_QUEUE] (default: the store's)\n"
"  --lock URI              seat lock filter [CONCERT_LOCK] (default: none)\n"
"  --secret STRING         queue-token HMAC key [CONCERT_SECRET]; every instance\n"
"                          sharing a queue needs the same one (default: random)\n"
"  --secret-file PATH      read the key from a file [CONCERT_SECRET_FILE]\n"
"  --max-active N          ACTIVE queue tokens per concert [CONCERT_MAX_ACTIVE] (100)\n"
"  --admit-per-second N    admissions per concert per second, 0 = no limit\n"
"                          [CONCERT_ADMIT_PER_SECOND] (0)\n"
"  --hold-ttl DURATION     seat hold lifetime [CONCERT_HOLD_TTL] (5m)\n"
"  --active-ttl DURATION   ACTIVE token lifetime [CONCERT_ACTIVE_TTL] (10m)\n"
"  --threads N             worker threads [CONCERT_THREADS] (number of CPUs)\n"
"  --timeout SECONDS       close connections idle this long; a request must keep\n"
"                          sending within it [CONCERT_TIMEOUT] (30)\n"
"  --max-connections N     concurrent connections [CONCERT_MAX_CONNECTIONS] (1000)\n"
"  --shutdown-timeout SECS wait this long for in-flight requests on SIGTERM\n"
"                          [CONCERT_SHUTDOWN_TIMEOUT] (10)\n"
"  --access-log PATH|-|off one JSON line per request [CONCERT_ACCESS_LOG] (-: stdout)\n"
"  --log-level LEVEL       error, warn, info or debug [CONCERT_LOG_LEVEL] (info)\n"
"  --demo                  seed a demo concert (2 schedules x 50 seats) if the\n"
"                          store has no concert yet [CONCERT_DEMO=1]\n"
"  --test-clock            TEST FACILITY: the engine's clock is set through\n"
"                          POST /_test/clock and GET /_test/audit exists.\n"
"                          Never use it in production.\n"
"  --help                  this text\n"
"  --version               the server and library version\n"
"\n"
"DURATION is a number with an optional unit: ms, s (default), m or h.\n");
}

static const char *env_or(const char *flag, const char *name)
{
	if (flag)
		return flag;
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static bool parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	if (!s || !*s)
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || s[0] == '-' || v > max)
		return false;
	*out = v;
	return true;
}

/* "300", "300s", "250ms", "5m", "1h" -> milliseconds. */
static bool parse_duration(const char *s, concert_time *out)
{
	char *end;
	errno = 0;
	if (!s || !*s || s[0] == '-')
		return false;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return false;
	unsigned long long unit;
	if (!*end || strcmp(end, "s") == 0)
		unit = 1000;
	else if (strcmp(end, "ms") == 0)
		unit = 1;
	else if (strcmp(end, "m") == 0)
		unit = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		unit = 60 * 60 * 1000;
	else
		return false;
	if (v == 0 || v > (unsigned long long)INT64_MAX / unit)
		return false;
	*out = (concert_time)(v * unit);
	return true;
}

static int parse_level(const char *s)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

static bool fail(const char *what, const char *value)
{
	fprintf(stderr, "concert-http-server: invalid %s: %s\n", what, value ? value : "(none)");
	return false;
}

/* Reads the secret file; trailing newlines are not part of the key. */
static bool read_secret_file(const char *path, unsigned char *buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "concert-http-server: cannot read secret file %s: %s\n", path,
			strerror(errno));
		return false;
	}
	size_t n = fread(buf, 1, SECRET_MAX, f);
	bool too_long = n == SECRET_MAX && fgetc(f) != EOF;
	fclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (too_long || n == 0)
		return fail("secret file (empty or over 4096 bytes)", path);
	*len = n;
	return true;
}

/* Binds and listens on HOST:PORT ("[v6]:port" for IPv6). */
static int open_listener(const char *listen_at, char *bound, size_t bound_size)
{
	char host[256];
	const char *colon = strrchr(listen_at, ':');
	if (!colon || colon == listen_at || !colon[1])
		return -1;
	size_t hlen = (size_t)(colon - listen_at);
	if (listen_at[0] == '[' && hlen >= 2 && listen_at[hlen - 1] == ']') {
		listen_at++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		return -1;
	memcpy(host, listen_at, hlen);
	host[hlen] = '\0';
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
		return -1;
	int fd = -1;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return -1;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char h[NI_MAXHOST], p[NI_MAXSERV];
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p),
			NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		snprintf(bound, bound_size, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", h, p);
	else
		snprintf(bound, bound_size, "%s", listen_at);
	return fd;
}

static concert_time test_clock_now(void *ctx)
{
	app *a = ctx;
	return atomic_load(&a->test_now);
}

static sigset_t stop_signals;

static bool stop_requested_again(void)
{
	struct timespec zero = { 0, 0 };
	return sigtimedwait(&stop_signals, NULL, &zero) > 0;
}

static bool parse_args(int argc, char **argv, config *cfg, int *exit_code)
{
	enum { O_LISTEN = 256, O_STORE, O_QUEUE, O_LOCK, O_SECRET, O_SECRET_FILE, O_MAX_ACTIVE,
		O_ADMIT, O_HOLD_TTL, O_ACTIVE_TTL, O_THREADS, O_TIMEOUT, O_MAX_CONN, O_SHUTDOWN,
		O_ACCESS_LOG, O_LOG_LEVEL, O_DEMO, O_TEST_CLOCK, O_HELP, O_VERSION };
	static const struct option options[] = {
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "store", required_argument, NULL, O_STORE },
		{ "queue", required_argument, NULL, O_QUEUE },
		{ "lock", required_argument, NULL, O_LOCK },
		{ "secret", required_argument, NULL, O_SECRET },
		{ "secret-file", required_argument, NULL, O_SECRET_FILE },
		{ "max-active", required_argument, NULL, O_MAX_ACTIVE },
		{ "admit-per-second", required_argument, NULL, O_ADMIT },
		{ "hold-ttl", required_argument, NULL, O_HOLD_TTL },
		{ "active-ttl", required_argument, NULL, O_ACTIVE_TTL },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "max-connections", required_argument, NULL, O_MAX_CONN },
		{ "shutdown-timeout", required_argument, NULL, O_SHUTDOWN },
		{ "access-log", required_argument, NULL, O_ACCESS_LOG },
		{ "log-level", required_argument, NULL, O_LOG_LEVEL },
		{ "demo", no_argument, NULL, O_DEMO },
		{ "test-clock", no_argument, NULL, O_TEST_CLOCK },
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case O_LISTEN: cfg->listen = optarg; break;
		case O_STORE: cfg->store = optarg; break;
		case O_QUEUE: cfg->queue = optarg; break;
		case O_LOCK: cfg->lock = optarg; break;
		case O_SECRET: cfg->secret = optarg; break;
		case O_SECRET_FILE: cfg->secret_file = optarg; break;
		case O_MAX_ACTIVE: cfg->max_active = optarg; break;
		case O_ADMIT: cfg->admit_per_second = optarg; break;
		case O_HOLD_TTL: cfg->hold_ttl = optarg; break;
		case O_ACTIVE_TTL: cfg->active_ttl = optarg; break;
		case O_THREADS: cfg->threads = optarg; break;
		case O_TIMEOUT: cfg->timeout = optarg; break;
		case O_MAX_CONN: cfg->max_connections = optarg; break;
		case O_SHUTDOWN: cfg->shutdown_timeout = optarg; break;
		case O_ACCESS_LOG: cfg->access_log = optarg; break;
		case O_LOG_LEVEL: cfg->log_level = optarg; break;
		case O_DEMO: cfg->demo = true; break;
		case O_TEST_CLOCK: cfg->test_clock = true; break;
		case 'h':
		case O_HELP:
			usage(stdout);
			*exit_code = 0;
			return false;
		case O_VERSION:
			printf("concert-http-server %s (libconcert %s, libmicrohttpd %s)\n",
			       CONCERT_VERSION, concert_version(), MHD_get_version());
			*exit_code = 0;
			return false;
		default:
			usage(stderr);
			*exit_code = 2;
			return false;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "concert-http-server: unexpected argument: %s\n", argv[optind]);
		*exit_code = 2;
		return false;
	}
	cfg->listen = env_or(cfg->listen, "CONCERT_LISTEN");
	cfg->store = env_or(cfg->store, "CONCERT_STORE");
	cfg->queue = env_or(cfg->queue, "CONCERT_QUEUE");
	cfg->lock = env_or(cfg->lock, "CONCERT_LOCK");
	cfg->secret = env_or(cfg->secret, "CONCERT_SECRET");
	cfg->secret_file = env_or(cfg->secret_file, "CONCERT_SECRET_FILE");
	cfg->max_active = env_or(cfg->max_active, "CONCERT_MAX_ACTIVE");
	cfg->admit_per_second = env_or(cfg->admit_per_second, "CONCERT_ADMIT_PER_SECOND");
	cfg->hold_ttl = env_or(cfg->hold_ttl, "CONCERT_HOLD_TTL");
	cfg->active_ttl = env_or(cfg->active_ttl, "CONCERT_ACTIVE_TTL");
	cfg->threads = env_or(cfg->threads, "CONCERT_THREADS");
	cfg->timeout = env_or(cfg->timeout, "CONCERT_TIMEOUT");
	cfg->max_connections = env_or(cfg->max_connections, "CONCERT_MAX_CONNECTIONS");
	cfg->shutdown_timeout = env_or(cfg->shutdown_timeout, "CONCERT_SHUTDOWN_TIMEOUT");
	cfg->access_log = env_or(cfg->access_log, "CONCERT_ACCESS_LOG");
	cfg->log_level = env_or(cfg->log_level, "CONCERT_LOG_LEVEL");
	const char *demo = getenv("CONCERT_DEMO");
	if (demo && strcmp(demo, "1") == 0)
		cfg->demo = true;
	return true;
}

/* Fills the engine options from the configuration. */
static bool engine_options(const config *cfg, concert_options *opts, unsigned char *secret)
{
	uint64_t n;
	opts->store = cfg->store ? cfg->store : "memory:";
	opts->queue = cfg->queue;
	opts->lock = cfg->lock;
	if (cfg->secret_file) {
		if (!read_secret_file(cfg->secret_file, secret, &opts->secret_len))
			return false;
		opts->secret = secret;
	} else if (cfg->secret) {
		opts->secret_len = strlen(cfg->secret);
		if (opts->secret_len > SECRET_MAX)
			return fail("secret (over 4096 bytes)", "");
		memcpy(secret, cfg->secret, opts->secret_len);
		opts->secret = secret;
	}
	if (cfg->max_active) {
		if (!parse_uint(cfg->max_active, UINT32_MAX, &n) || n == 0)
			return fail("--max-active", cfg->max_active);
		opts->max_active = (uint32_t)n;
	}
	if (cfg->admit_per_second) {
		if (!parse_uint(cfg->admit_per_second, UINT32_MAX, &n))
			return fail("--admit-per-second", cfg->admit_per_second);
		opts->admit_per_second = (uint32_t)n;
	}
	if (cfg->hold_ttl) {
		if (!parse_duration(cfg->hold_ttl, &opts->hold_ttl))
			return fail("--hold-ttl", cfg->hold_ttl);
		/* Keep the default room for extensions when the hold lives longer. */
		if (opts->hold_ttl > 5 * MINUTE_MS)
			opts->hold_max_lifetime = 3 * opts->hold_ttl;
	}
	if (cfg->active_ttl && !parse_duration(cfg->active_ttl, &opts->active_ttl))
		return fail("--active-ttl", cfg->active_ttl);
	return true;
}

static bool server_options(const config *cfg, server_config *sc, unsigned *grace_ms)
{
	uint64_t n;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	sc->threads = cpus > 0 ? (unsigned)cpus : 2;
	sc->timeout_seconds = 30;
	sc->max_connections = 1000;
	*grace_ms = 10000;
	if (cfg->threads) {
		if (!parse_uint(cfg->threads, 256, &n) || n == 0)
			return fail("--threads", cfg->threads);
		sc->threads = (unsigned)n;
	}
	if (cfg->timeout) {
		if (!parse_uint(cfg->timeout, 3600, &n) || n == 0)
			return fail("--timeout", cfg->timeout);
		sc->timeout_seconds = (unsigned)n;
	}
	if (cfg->max_connections) {
		if (!parse_uint(cfg->max_connections, 1000000, &n) || n == 0)
			return fail("--max-connections", cfg->max_connections);
		sc->max_connections = (unsigned)n;
	}
	if (cfg->shutdown_timeout) {
		if (!parse_uint(cfg->shutdown_timeout, 3600, &n))
			return fail("--shutdown-timeout", cfg->shutdown_timeout);
		*grace_ms = (unsigned)n * 1000;
	}
	return true;
}

static bool open_access_log(const config *cfg, app *a)
{
	const char *where = cfg->access_log ? cfg->access_log : "-";
	if (strcmp(where, "off") == 0) {
		a->access_log_fd = -1;
	} else if (strcmp(where, "-") == 0) {
		a->access_log_fd = STDOUT_FILENO;
	} else {
		FILE *f = fopen(where, "a");
		if (!f) {
			fprintf(stderr, "concert-http-server: cannot open access log %s: %s\n", where,
				strerror(errno));
			return false;
		}
		a->access_log_fd = dup(fileno(f));
		fclose(f);
	}
	return true;
}

int main(int argc, char **argv)
{
	static app a;
	static unsigned char secret[SECRET_MAX];
	config cfg = { 0 };
	int exit_code = 1;
	if (!parse_args(argc, argv, &cfg, &exit_code))
		return exit_code;

	a.started_at = wall_ms();
	a.log_level = CONCERT_LOG_INFO;
	if (cfg.log_level && (a.log_level = parse_level(cfg.log_level)) < 0) {
		fail("--log-level", cfg.log_level);
		return 2;
	}
	concert_options opts;
	concert_options_init(&opts, CONCERT_OPTIONS_VERSION);
	server_config sc = { 0 };
	unsigned grace_ms;
	if (!engine_options(&cfg, &opts, secret) || !server_options(&cfg, &sc, &grace_ms) ||
	    !open_access_log(&cfg, &a))
		return 2;
	opts.log = engine_log;
	opts.log_level = a.log_level;
	if (cfg.test_clock) {
		a.test_clock = true;
		atomic_store(&a.test_now, wall_ms());
		opts.clock = test_clock_now;
		opts.clock_ctx = &a;
		log_line(&a, CONCERT_LOG_WARN, "TEST CLOCK ENABLED: /_test/ endpoints are open; "
			 "never run this in production", NULL, NULL);
	}
	if (!opts.secret)
		log_line(&a, CONCERT_LOG_WARN, "no --secret: queue tokens are valid for this "
			 "process only", NULL, NULL);

	/* Every thread started from here on (libmicrohttpd's workers) inherits
	 * this mask, so only sigtimedwait in main sees the stop signals. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	signal(SIGPIPE, SIG_IGN);

	int rc = concert_engine_open(&a.engine, &opts);
	if (rc < 0) {
		log_line(&a, CONCERT_LOG_ERROR, "cannot open the engine", "detail",
			 concert_error_last()->message);
		return 1;
	}
	if (cfg.demo && demo_seed(&a) < 0) {
		concert_engine_close(a.engine);
		return 1;
	}
	char bound[300];
	const char *listen_at = cfg.listen ? cfg.listen : "127.0.0.1:8080";
	sc.listen_fd = open_listener(listen_at, bound, sizeof(bound));
	if (sc.listen_fd < 0) {
		log_line(&a, CONCERT_LOG_ERROR, "cannot listen", "listen", listen_at);
		concert_engine_close(a.engine);
		return 1;
	}
	struct MHD_Daemon *daemon = server_start(&a, &sc);
	if (!daemon) {
		log_line(&a, CONCERT_LOG_ERROR, "cannot start libmicrohttpd", "listen", bound);
		close(sc.listen_fd);
		concert_engine_close(a.engine);
		return 1;
	}
	char url[320];
	snprintf(url, sizeof(url), "http://%s", bound);
	log_line(&a, CONCERT_LOG_INFO, "listening", "url", url);

	int sig;
	while (sigwait(&stop_signals, &sig) != 0)
		;
	log_line(&a, CONCERT_LOG_INFO, "stopping: finishing requests in flight", "signal",
		 sig == SIGTERM ? "SIGTERM" : "SIGINT");
	server_shutdown(&a, daemon, grace_ms, stop_requested_again);
	concert_engine_close(a.engine);
	if (a.access_log_fd > STDERR_FILENO)
		close(a.access_log_fd);
	log_line(&a, CONCERT_LOG_INFO, "stopped", NULL, NULL);
	return 0;
}
