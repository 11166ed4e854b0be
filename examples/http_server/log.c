/*
 * Diagnostics: one JSON object per line on stderr, so the lines can be
 * shipped and parsed like the access log. Each line is written with one
 * write(2), so lines from different threads never interleave.
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jsonw.h"

int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *level_name(int level)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	return level >= 0 && level <= CONCERT_LOG_DEBUG ? names[level] : "info";
}

static void write_line(int level, const char *source, const char *msg, const char *key,
		       const char *value)
{
	jsonw w;
	jsonw_init(&w);
	w.ascii = true;
	jsonw_object_begin(&w);
	jsonw_kv_time(&w, "time", wall_ms());
	jsonw_kv_string(&w, "level", level_name(level));
	jsonw_kv_string(&w, "source", source);
	jsonw_kv_string(&w, "msg", msg);
	if (key && value)
		jsonw_kv_string(&w, key, value);
	jsonw_object_end(&w);
	jsonw_raw(&w, "\n", 1);
	size_t len;
	char *line = jsonw_take(&w, &len);
	if (line) {
		ssize_t n = write(STDERR_FILENO, line, len);
		(void)n;
		free(line);
	}
}

void log_line(const app *a, int level, const char *msg, const char *key, const char *value)
{
	if (a && level > a->log_level)
		return;
	write_line(level, "server", msg, key, value);
}

void engine_log(void *ctx, int level, const char *message)
{
	(void)ctx;
	write_line(level, "libconcert", message, NULL, NULL);
}
