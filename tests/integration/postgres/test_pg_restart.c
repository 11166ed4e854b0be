/*
 * PostgreSQL restarted (pg_ctl restart -m immediate, i.e. a crash) in the
 * middle of a payment load. Every call must either succeed (and be in the
 * database) or fail with CONCERT_EUNAVAILABLE; replaying the failed ones
 * with their idempotency keys once the server is back must succeed at the
 * first try (the pool reconnects by itself) and have exactly one effect
 * each; the invariants hold.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pg_itest.h"

enum { THREADS = 8, USERS = 1000, PRICE = 1000, FUNDS = 5000, TOP_UP = 100,
       RESTART_AFTER = 100 };

typedef struct user_state {
	char name[32];
	char token[CONCERT_TOKEN_MAX + 1];
	int64_t hold_id;
	int pay_rc;
	int charge_rc;
	int64_t reservation_id;
} user_state;

static user_state users[USERS];
static concert_engine *engine;
static _Atomic int next_user;
static _Atomic int unexpected;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t progress = PTHREAD_COND_INITIALIZER;
static int paid_count;

static void key(char *buf, size_t size, const char *what, int user)
{
	snprintf(buf, size, "%s-%d", what, user);
}

static int pay(int i)
{
	char k[32];
	concert_payment *p = NULL;
	key(k, sizeof(k), "pay", i);
	int rc = concert_pay(engine, &p, users[i].token, users[i].hold_id, k);
	if (rc == 0) {
		IT_CHECK(users[i].reservation_id == 0 || users[i].reservation_id == p->reservation_id,
			 "user %d: a replay answered another reservation", i);
		users[i].reservation_id = p->reservation_id;
	}
	concert_free(p);
	return rc;
}

static int top_up(int i)
{
	char k[32];
	key(k, sizeof(k), "top-up", i);
	return concert_wallet_charge(engine, NULL, users[i].name, TOP_UP, k);
}

static void *load(void *arg)
{
	(void)arg;
	for (;;) {
		int i = atomic_fetch_add(&next_user, 1);
		if (i >= USERS)
			return NULL;
		users[i].pay_rc = pay(i);
		users[i].charge_rc = top_up(i);
		if ((users[i].pay_rc && users[i].pay_rc != CONCERT_EUNAVAILABLE) ||
		    (users[i].charge_rc && users[i].charge_rc != CONCERT_EUNAVAILABLE)) {
			atomic_fetch_add(&unexpected, 1);
			IT_CHECK(0, "user %d: pay %s, charge %s: not a clear outcome", i,
				 concert_error_name(users[i].pay_rc), concert_error_name(users[i].charge_rc));
		}
		pthread_mutex_lock(&lock);
		paid_count++;
		pthread_cond_broadcast(&progress);
		pthread_mutex_unlock(&lock);
	}
}

/* Waits (on the load's progress, not on time) and crashes the server. */
static void *restarter(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	while (paid_count < RESTART_AFTER)
		pthread_cond_wait(&progress, &lock);
	pthread_mutex_unlock(&lock);
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "'%s' restart '%s' '%s'", getenv("CONCERT_TEST_PG_SCRIPT"),
		 getenv("CONCERT_TEST_PG_DIR"), getenv("CONCERT_TEST_PG_PORT"));
	int status = system(cmd);
	IT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "restart failed: %s", cmd);
	return NULL;
}

int main(void)
{
	if (!getenv("CONCERT_TEST_PG_SCRIPT") || !getenv("CONCERT_TEST_PG_DIR") ||
	    !getenv("CONCERT_TEST_PG_PORT")) {
		fprintf(stderr, "needs CONCERT_TEST_PG_SCRIPT, _DIR and _PORT (run through ctest)\n");
		return 1;
	}
	char uri[IT_URI_MAX];
	it_uri(uri, "restart", THREADS);
	it_clock *clock = it_clock_new();
	engine = it_engine(uri, clock, 10 * IT_MINUTE);
	it_venue v;
	it_make_venue(engine, &v, USERS, PRICE);
	for (int i = 0; i < USERS; i++) {
		user_state *u = &users[i];
		snprintf(u->name, sizeof(u->name), "restart-user-%d", i);
		IT_RC(it_token(engine, u->token, sizeof(u->token), u->name, v.concert_id), 0);
		IT_RC(concert_wallet_charge(engine, NULL, u->name, FUNDS, NULL), 0);
		int32_t seat = i + 1;
		concert_hold *hold = NULL;
		IT_RC(concert_hold_seats(engine, &hold, u->token, v.schedule_id, &seat, 1), 0);
		u->hold_id = hold ? hold->id : 0;
		concert_free(hold);
	}

	pthread_t threads[THREADS], crash;
	pthread_create(&crash, NULL, restarter, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&threads[i], NULL, load, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	pthread_join(crash, NULL);

	/* The server is back (pg_ctl waited for it): replays succeed at once. */
	int failed_pays = 0, failed_charges = 0;
	for (int i = 0; i < USERS; i++) {
		if (users[i].pay_rc) {
			failed_pays++;
			IT_RC(pay(i), 0);
		}
		if (users[i].charge_rc) {
			failed_charges++;
			IT_RC(top_up(i), 0);
		}
		/* A replay of a call that did succeed changes nothing either. */
		if (i % 10 == 0) {
			IT_RC(pay(i), 0);
			IT_RC(top_up(i), 0);
		}
	}
	printf("restart: %d payments and %d charges failed in flight or while down; all replayed\n",
	       failed_pays, failed_charges);
	IT_CHECK(failed_pays + failed_charges > 0, "the restart hit no call: the test proved nothing");

	PGconn *db = it_db(uri);
	it_check_invariants(db);
	IT_CHECK(it_db_int(db, "SELECT count(*) FROM reservations") == USERS,
		 "expected one reservation per user");
	IT_CHECK(it_db_int(db, "SELECT count(*) FROM wallets WHERE balance <> " "4100") == 0,
		 "a balance is not funds + top-up - price");
	IT_CHECK(it_db_int(db, "SELECT count(*) FROM (SELECT user_id FROM wallet_transactions "
			       "GROUP BY user_id HAVING count(*) <> 3) odd") == 0,
		 "a user has other than 3 transactions");
	for (int i = 0; i < USERS; i++) {
		char id[32];
		snprintf(id, sizeof(id), "%lld", (long long)users[i].reservation_id);
		const char *params[] = { id, users[i].name };
		PGresult *res = PQexecParams(db, "SELECT 1 FROM reservations WHERE id = $1 AND user_id = $2",
					     2, NULL, params, NULL, NULL, 0);
		IT_CHECK(PQntuples(res) == 1, "user %d: its reservation is not the stored one", i);
		PQclear(res);
	}
	PQfinish(db);
	concert_engine_close(engine);
	return it_finish("restart");
}
