/*
 * Prometheus text for GET /metrics.
 *
 * The HTTP side is counted here; the domain side (holds, payments,
 * conflicts, per-error counts) comes from the engine's statistics so the
 * numbers are the library's, not a second bookkeeping that could drift.
 */
#include "metrics.h"

#include "server.h"

static const int statuses[METRICS_STATUSES] = {
	0, 200, 201, 204, 400, 401, 402, 403, 404, 405, 409, 410, 413, 414, 429, 500, 503
};

/* Upper bounds in microseconds. */
static const uint64_t bucket_us[METRICS_BUCKETS] = {
	50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000
};

static size_t status_slot(int status)
{
	for (size_t i = 0; i < METRICS_STATUSES; i++)
		if (statuses[i] == status)
			return i;
	return METRICS_STATUSES;
}

void metrics_observe(metrics *m, size_t route, int status, uint64_t latency_ns)
{
	if (route >= routes_count())
		route = METRICS_ROUTES_MAX;
	route_metrics *r = &m->routes[route];
	atomic_fetch_add_explicit(&r->by_status[status_slot(status)], 1, memory_order_relaxed);
	size_t b = 0;
	uint64_t us = latency_ns / 1000;
	while (b < METRICS_BUCKETS && us > bucket_us[b])
		b++;
	atomic_fetch_add_explicit(&r->buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->sum_ns, latency_ns, memory_order_relaxed);
}

static uint64_t load(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static const char *label_of(size_t route)
{
	return route < routes_count() ? routes_label(route) : "unmatched";
}

static void render_requests(metrics *m, jsonw *out)
{
	size_t n = routes_count();
	jsonw_rawf(out, "# HELP concert_http_requests_total HTTP requests by route and status "
			"(status 0: the client went away before the answer).\n"
			"# TYPE concert_http_requests_total counter\n");
	for (size_t r = 0; r <= n; r++) {
		route_metrics *rm = &m->routes[r < n ? r : METRICS_ROUTES_MAX];
		for (size_t s = 0; s <= METRICS_STATUSES; s++) {
			uint64_t v = load(&rm->by_status[s]);
			if (!v)
				continue;
			if (s < METRICS_STATUSES)
				jsonw_rawf(out, "concert_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
					   label_of(r), statuses[s], (unsigned long long)v);
			else
				jsonw_rawf(out, "concert_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
					   label_of(r), (unsigned long long)v);
		}
	}
	jsonw_rawf(out, "# HELP concert_http_request_duration_seconds Time from the first byte of "
			"a request to the end of its response.\n"
			"# TYPE concert_http_request_duration_seconds histogram\n");
	for (size_t r = 0; r <= n; r++) {
		route_metrics *rm = &m->routes[r < n ? r : METRICS_ROUTES_MAX];
		uint64_t counts[METRICS_BUCKETS + 1], total = 0;
		for (size_t b = 0; b <= METRICS_BUCKETS; b++)
			total += counts[b] = load(&rm->buckets[b]);
		if (!total)
			continue;
		uint64_t cumulative = 0;
		for (size_t b = 0; b < METRICS_BUCKETS; b++) {
			cumulative += counts[b];
			jsonw_rawf(out, "concert_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
				   label_of(r), (double)bucket_us[b] / 1e6, (unsigned long long)cumulative);
		}
		jsonw_rawf(out, "concert_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
				"concert_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
				"concert_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
			   label_of(r), (unsigned long long)total, label_of(r),
			   (double)load(&rm->sum_ns) / 1e9, label_of(r), (unsigned long long)total);
	}
}

static void render_engine(concert_engine *e, jsonw *out)
{
	jsonw_rawf(out, "# HELP concert_engine_ops_total libconcert calls by operation and result "
			"(concert_engine_stat).\n# TYPE concert_engine_ops_total counter\n");
	for (int op = 0; op < CONCERT_OP_COUNT; op++) {
		for (int i = 0; i < CONCERT_ERROR_COUNT; i++) {
			uint64_t v = concert_engine_stat(e, op, -i);
			if (v || i == 0)
				jsonw_rawf(out, "concert_engine_ops_total{op=\"%s\",result=\"%s\"} %llu\n",
					   concert_op_name(op), concert_error_name(-i), (unsigned long long)v);
		}
	}
	jsonw_rawf(out,
		   "# HELP concert_holds_total Seat holds made.\n# TYPE concert_holds_total counter\n"
		   "concert_holds_total %llu\n"
		   "# HELP concert_payments_total Holds paid.\n# TYPE concert_payments_total counter\n"
		   "concert_payments_total %llu\n"
		   "# HELP concert_seat_conflicts_total Holds refused because a seat was taken.\n"
		   "# TYPE concert_seat_conflicts_total counter\n"
		   "concert_seat_conflicts_total %llu\n",
		   (unsigned long long)concert_engine_stat(e, CONCERT_OP_HOLD, 0),
		   (unsigned long long)concert_engine_stat(e, CONCERT_OP_PAY, 0),
		   (unsigned long long)concert_engine_stat(e, CONCERT_OP_HOLD, CONCERT_ESEAT_UNAVAILABLE));
}

/* Seat counts per schedule, as the library judges them now (expired holds
 * count as available). */
static void render_seats(concert_engine *e, jsonw *out)
{
	concert_concert_list *concerts = NULL;
	if (concert_concerts_list(e, &concerts) < 0)
		return;
	jsonw_rawf(out, "# HELP concert_schedule_seats Seats of a schedule by state.\n"
			"# TYPE concert_schedule_seats gauge\n");
	for (size_t c = 0; c < concerts->count; c++) {
		concert_schedule_list *schedules = NULL;
		if (concert_schedules_list(e, &schedules, concerts->items[c].id) < 0)
			continue;
		for (size_t s = 0; s < schedules->count; s++) {
			const concert_schedule *sc = &schedules->items[s];
			jsonw_rawf(out,
				   "concert_schedule_seats{concert=\"%lld\",schedule=\"%lld\",state=\"available\"} %lld\n"
				   "concert_schedule_seats{concert=\"%lld\",schedule=\"%lld\",state=\"held\"} %lld\n"
				   "concert_schedule_seats{concert=\"%lld\",schedule=\"%lld\",state=\"reserved\"} %lld\n",
				   (long long)sc->concert_id, (long long)sc->id, (long long)sc->available_seats,
				   (long long)sc->concert_id, (long long)sc->id, (long long)sc->held_seats,
				   (long long)sc->concert_id, (long long)sc->id, (long long)sc->reserved_seats);
		}
		concert_free(schedules);
	}
	concert_free(concerts);
}

/* Queue lengths and ACTIVE users per concert. */
static void render_queues(concert_engine *e, jsonw *out)
{
	concert_concert_list *concerts = NULL;
	if (concert_concerts_list(e, &concerts) < 0)
		return;
	jsonw_rawf(out, "# HELP concert_queue_tokens Queue tokens of a concert by state.\n"
			"# TYPE concert_queue_tokens gauge\n");
	for (size_t c = 0; c < concerts->count; c++) {
		uint64_t waiting, active;
		long long id = (long long)concerts->items[c].id;
		if (concert_queue_counts(e, concerts->items[c].id, &waiting, &active) < 0)
			continue;
		jsonw_rawf(out,
			   "concert_queue_tokens{concert=\"%lld\",state=\"waiting\"} %llu\n"
			   "concert_queue_tokens{concert=\"%lld\",state=\"active\"} %llu\n",
			   id, (unsigned long long)waiting, id, (unsigned long long)active);
	}
	concert_free(concerts);
}

void metrics_render(app *a, jsonw *out)
{
	render_requests(&a->metrics, out);
	jsonw_rawf(out,
		   "# HELP concert_http_in_flight_requests Requests being served.\n"
		   "# TYPE concert_http_in_flight_requests gauge\n"
		   "concert_http_in_flight_requests %ld\n"
		   "# HELP concert_http_open_connections Client connections open.\n"
		   "# TYPE concert_http_open_connections gauge\n"
		   "concert_http_open_connections %ld\n"
		   "# HELP concert_process_start_time_seconds Start time of the server.\n"
		   "# TYPE concert_process_start_time_seconds gauge\n"
		   "concert_process_start_time_seconds %.3f\n"
		   "# HELP concert_build_info The libconcert version.\n"
		   "# TYPE concert_build_info gauge\n"
		   "concert_build_info{version=\"%s\"} 1\n",
		   atomic_load(&a->in_flight), atomic_load(&a->connections),
		   (double)a->started_at / 1000.0, concert_version());
	render_engine(a->engine, out);
	render_seats(a->engine, out);
	render_queues(a->engine, out);
}
