/*
 * Request metrics, lock-free: a counter per (route, status) and a latency
 * histogram per route, rendered as Prometheus text with the engine's own
 * statistics (concert_engine_stat) at GET /metrics.
 */
#ifndef HTTP_METRICS_H
#define HTTP_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "jsonw.h"

#define METRICS_ROUTES_MAX 32
#define METRICS_STATUSES 17
#define METRICS_BUCKETS 14

typedef struct route_metrics {
	_Atomic uint64_t by_status[METRICS_STATUSES + 1]; /* last: any other status */
	_Atomic uint64_t buckets[METRICS_BUCKETS + 1];    /* last: +Inf */
	_Atomic uint64_t sum_ns;
} route_metrics;

typedef struct metrics {
	route_metrics routes[METRICS_ROUTES_MAX + 1];     /* last: no route matched */
} metrics;

struct app;

/* Counts one finished request. `status` 0 means the client went away. */
void metrics_observe(metrics *m, size_t route, int status, uint64_t latency_ns);
/* Appends the Prometheus text exposition of everything to `out`. */
void metrics_render(struct app *a, jsonw *out);

#endif
