/*
 * Multi-process contention: 3 processes x 16 threads, one engine each,
 * share one PostgreSQL and race 1,000 clients for the 50 seats of one
 * schedule, with charges, payments (some short of funds) and cancellations
 * mixed in. Afterwards the tables are read directly: exactly one winner per
 * seat, one payment per reservation, money conserved to the unit, no
 * negative balance, and every success a process saw is in the database.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pg_itest.h"

enum { PROCESSES = 3, THREADS = 16, CLIENTS = 1000, SEATS = 50, PRICE = 10000, TRIES = 4 };

/* What a client saw, in memory shared by all processes. */
typedef struct outcome {
	_Atomic int done;
	int64_t reservation_id;   /* 0: none */
	int64_t amount;
	int cancelled;
	int64_t balance;          /* last balance the engine reported */
} outcome;

typedef struct shared {
	_Atomic int next_client;
	outcome clients[CLIENTS];
} shared;

typedef struct worker {
	concert_engine *engine;
	shared *sh;
	const it_venue *venue;
} worker;

static void user_of(char *buf, size_t size, int client)
{
	snprintf(buf, size, "client-%d", client);
}

/* Up to 2 ascending seats, from a client's own random sequence. */
static size_t pick_seats(unsigned *seed, int32_t *seats)
{
	seats[0] = 1 + rand_r(seed) % SEATS;
	if (rand_r(seed) % 3)
		return 1;
	int32_t other = 1 + rand_r(seed) % SEATS;
	if (other == seats[0])
		return 1;
	seats[1] = other > seats[0] ? other : seats[0];
	seats[0] = other > seats[0] ? seats[0] : other;
	return 2;
}

static void run_client(worker *w, int client)
{
	char user[64], key[96], token[CONCERT_TOKEN_MAX + 1];
	outcome *out = &w->sh->clients[client];
	unsigned seed = (unsigned)client * 2654435761u;
	user_of(user, sizeof(user), client);
	int rc = it_token(w->engine, token, sizeof(token), user, w->venue->concert_id);
	IT_CHECK(rc == 0, "client %d: no ACTIVE token: %s", client, concert_error_name(rc));
	if (rc)
		return;
	/* One in ten cannot afford a seat: its payment must fail cleanly. */
	int64_t charge = client % 10 == 0 ? PRICE / 2 : 3 * PRICE;
	snprintf(key, sizeof(key), "charge-%d", client);
	IT_RC(concert_wallet_charge(w->engine, &out->balance, user, charge, key), 0);

	for (int attempt = 0; attempt < TRIES; attempt++) {
		int32_t seats[2];
		size_t n = pick_seats(&seed, seats);
		concert_hold *hold = NULL;
		rc = concert_hold_seats(w->engine, &hold, token, w->venue->schedule_id, seats, n);
		if (rc == CONCERT_ESEAT_UNAVAILABLE)
			continue;
		IT_CHECK(rc == 0, "client %d: hold: %s (%s)", client, concert_error_name(rc),
			 concert_error_last()->message);
		if (rc)
			return;
		concert_payment *p = NULL;
		snprintf(key, sizeof(key), "pay-%d", client);
		rc = concert_pay(w->engine, &p, token, hold->id, key);
		if (rc == CONCERT_EFUNDS) {
			IT_CHECK(charge < hold->amount, "client %d: refused with enough funds", client);
			IT_RC(concert_hold_release(w->engine, token, hold->id, NULL, 0), 0);
			concert_free(hold);
			return;
		}
		IT_CHECK(rc == 0, "client %d: pay: %s (%s)", client, concert_error_name(rc),
			 concert_error_last()->message);
		if (rc == 0) {
			out->reservation_id = p->reservation_id;
			out->amount = p->amount;
			out->balance = p->balance;
			IT_CHECK(p->amount == (int64_t)n * PRICE, "client %d: paid %lld for %zu seats",
				 client, (long long)p->amount, n);
			/* One in five changes its mind: the seats go back into the race. */
			if (client % 5 == 1) {
				int64_t refunded = 0;
				IT_RC(concert_reservation_cancel(w->engine, &refunded, &out->balance, user,
								 p->reservation_id), 0);
				IT_CHECK(refunded == p->amount, "client %d: refund %lld", client,
					 (long long)refunded);
				out->cancelled = 1;
			}
		}
		concert_free(p);
		concert_free(hold);
		return;
	}
}

static void *worker_run(void *arg)
{
	worker *w = arg;
	for (;;) {
		int client = atomic_fetch_add(&w->sh->next_client, 1);
		if (client >= CLIENTS)
			return NULL;
		run_client(w, client);
		atomic_store(&w->sh->clients[client].done, 1);
	}
}

static int child(const char *uri, it_clock *clock, shared *sh, const it_venue *venue,
		 int ready_fd, int go_fd)
{
	concert_engine *e = it_engine(uri, clock, 10 * IT_MINUTE);
	char byte = 1, buf;
	/* Every process connected before anyone starts: a real race. */
	if (write(ready_fd, &byte, 1) != 1 || read(go_fd, &buf, 1) != 0)
		return 1;
	worker w = { e, sh, venue };
	pthread_t threads[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&threads[i], NULL, worker_run, &w);
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	concert_engine_close(e);
	return it_failures ? 1 : 0;
}

static void check_outcomes(PGconn *db, const shared *sh)
{
	int64_t paid = 0, cancelled = 0;
	for (int i = 0; i < CLIENTS; i++) {
		const outcome *o = &sh->clients[i];
		IT_CHECK(atomic_load(&o->done), "client %d never ran", i);
		if (!o->reservation_id)
			continue;
		paid++;
		cancelled += o->cancelled;
		char user[64], id[32];
		user_of(user, sizeof(user), i);
		snprintf(id, sizeof(id), "%lld", (long long)o->reservation_id);
		const char *params[] = { id, user };
		PGresult *res = PQexecParams(db,
			"SELECT amount, state FROM reservations WHERE id = $1 AND user_id = $2", 2, NULL,
			params, NULL, NULL, 0);
		int found = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
		IT_CHECK(found, "client %d: acknowledged reservation %s is not in the database", i, id);
		if (found) {
			IT_CHECK(strtoll(PQgetvalue(res, 0, 0), NULL, 10) == o->amount,
				 "client %d: amount differs", i);
			IT_CHECK(atoi(PQgetvalue(res, 0, 1)) == (o->cancelled ? 2 : 1),
				 "client %d: reservation state differs", i);
		}
		PQclear(res);
	}
	IT_CHECK(it_db_int(db, "SELECT count(*) FROM reservations") == paid,
		 "the database has reservations nobody was told about");
	IT_CHECK(it_db_int(db, "SELECT count(*) FROM reservations WHERE state = 2") == cancelled,
		 "cancellations differ");
	int64_t reserved = it_db_int(db, "SELECT count(*) FROM concert_seats WHERE state = 2");
	IT_CHECK(reserved == it_db_int(db, "SELECT coalesce(sum(cardinality(seat_nos)), 0) "
					   "FROM reservations WHERE state = 1"),
		 "reserved seats differ from confirmed reservations");
	IT_CHECK(reserved > 0 && reserved <= SEATS, "%lld seats reserved", (long long)reserved);
	printf("contention: %lld payments, %lld cancelled, %lld of %d seats sold\n",
	       (long long)paid, (long long)cancelled, (long long)reserved, SEATS);
}

int main(void)
{
	char uri[IT_URI_MAX];
	it_uri(uri, "contention", 8);
	it_clock *clock = it_clock_new();
	it_venue venue;
	concert_engine *setup = it_engine(uri, clock, 10 * IT_MINUTE);
	it_make_venue(setup, &venue, SEATS, PRICE);
	concert_engine_close(setup);

	shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	memset(sh, 0, sizeof(*sh));
	int ready[2], go[2];
	if (pipe(ready) || pipe(go))
		return 1;
	pid_t pids[PROCESSES];
	for (int i = 0; i < PROCESSES; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			close(ready[0]);
			close(go[1]);
			_exit(child(uri, clock, sh, &venue, ready[1], go[0]));
		}
	}
	close(ready[1]);
	close(go[0]);
	char byte;
	for (int i = 0; i < PROCESSES; i++)
		IT_CHECK(read(ready[0], &byte, 1) == 1, "a process died before the start");
	close(go[1]);
	for (int i = 0; i < PROCESSES; i++) {
		int status = 0;
		waitpid(pids[i], &status, 0);
		IT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			 "process %d failed (status %d)", i, status);
	}

	PGconn *db = it_db(uri);
	it_check_invariants(db);
	check_outcomes(db, sh);
	PQfinish(db);

	concert_engine *e = it_engine(uri, clock, 10 * IT_MINUTE);
	concert_audit *a = NULL;
	IT_RC(concert_engine_audit(e, &a), 0);
	if (a) {
		IT_CHECK(!a->wallet_mismatches && !a->seat_mismatches && !a->payment_mismatches &&
			 a->total_balance + a->total_payments - a->total_refunds == a->total_charges,
			 "engine audit disagrees");
		concert_free(a);
	}
	concert_engine_close(e);
	return it_finish("contention");
}
