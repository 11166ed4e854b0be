/*
 * A stalled holder: process A holds a seat and is stopped (SIGSTOP) past
 * the hold's expiry; process B holds and pays the same seat; A is resumed
 * and tries to pay. It must fail, and seat and money must stay right.
 *
 * Twice: once with A on the shared clock (A sees its hold expired), once
 * with A's own clock left behind, as on a host whose clock lags: A still
 * believes in its hold, and only the seat's compare-and-set (the seat must
 * still be held by A's hold) stops the payment.
 *
 * The clocks are driven, so nothing waits for time to pass; the only
 * waits are for events (a pipe byte, the stop reported by waitpid).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pg_itest.h"

#define HOLD_TTL (5 * IT_MINUTE)
#define PRICE 10000
#define FUNDS 50000

typedef struct report {
	int64_t hold_id;
	int pay_rc;
	int64_t balance;
} report;

static int full_read(int fd, void *buf, size_t n)
{
	return read(fd, buf, n) == (ssize_t)n ? 0 : -1;
}

/* Process A: hold `seat`, report, wait for "go", pay, report. */
static int holder(const char *uri, it_clock *shared_clock, int lagging, const it_venue *v,
		  int32_t seat, const char *user, int to_parent, int from_parent)
{
	it_clock *clock = lagging ? it_clock_new() : shared_clock;
	atomic_store(&clock->now, atomic_load(&shared_clock->now));
	concert_engine *e = it_engine(uri, clock, HOLD_TTL);
	char token[CONCERT_TOKEN_MAX + 1], go;
	report r = { 0, -1, -1 };
	concert_hold *hold = NULL;
	if (it_token(e, token, sizeof(token), user, v->concert_id) != 0 ||
	    concert_wallet_charge(e, NULL, user, FUNDS, NULL) != 0 ||
	    concert_hold_seats(e, &hold, token, v->schedule_id, &seat, 1) != 0)
		return 1;
	r.hold_id = hold->id;
	concert_free(hold);
	if (write(to_parent, &r, sizeof(r)) != (ssize_t)sizeof(r) || full_read(from_parent, &go, 1))
		return 1;
	r.pay_rc = concert_pay(e, NULL, token, r.hold_id, "stalled-pay");
	printf("%s holder's payment: %s (%s)\n", lagging ? "lagging" : "stopped",
	       concert_error_name(r.pay_rc), concert_error_last()->message);
	fflush(stdout);
	concert_wallet_balance(e, &r.balance, user);
	if (write(to_parent, &r, sizeof(r)) != (ssize_t)sizeof(r))
		return 1;
	concert_engine_close(e);
	return 0;
}

static void scenario(const char *uri, it_clock *clock, concert_engine *b, const it_venue *v,
		     int lagging, int32_t seat)
{
	char user_a[64], user_b[64];
	snprintf(user_a, sizeof(user_a), "stalled-a-%d", lagging);
	snprintf(user_b, sizeof(user_b), "overtaker-b-%d", lagging);
	int up[2], down[2];
	if (pipe(up) || pipe(down)) {
		IT_CHECK(0, "pipe");
		return;
	}
	pid_t a = fork();
	if (a == 0) {
		close(up[0]);
		close(down[1]);
		_exit(holder(uri, clock, lagging, v, seat, user_a, up[1], down[0]));
	}
	close(up[1]);
	close(down[0]);
	report r;
	IT_CHECK(full_read(up[0], &r, sizeof(r)) == 0, "holder died before holding");

	/* Stop A, then let its hold expire on the shared clock. */
	kill(a, SIGSTOP);
	int status = 0;
	waitpid(a, &status, WUNTRACED);
	IT_CHECK(WIFSTOPPED(status), "holder did not stop");
	atomic_fetch_add(&clock->now, HOLD_TTL + 1);

	/* B overtakes: the expired hold blocks nobody. */
	char token[CONCERT_TOKEN_MAX + 1];
	concert_hold *hold = NULL;
	concert_payment *paid = NULL;
	IT_RC(it_token(b, token, sizeof(token), user_b, v->concert_id), 0);
	IT_RC(concert_wallet_charge(b, NULL, user_b, FUNDS, NULL), 0);
	IT_RC(concert_hold_seats(b, &hold, token, v->schedule_id, &seat, 1), 0);
	if (hold)
		IT_RC(concert_pay(b, &paid, token, hold->id, NULL), 0);

	/* A wakes up and tries to pay its old hold. */
	kill(a, SIGCONT);
	char go = 1;
	IT_CHECK(write(down[1], &go, 1) == 1, "cannot resume holder");
	IT_CHECK(full_read(up[0], &r, sizeof(r)) == 0, "holder died after resuming");
	waitpid(a, &status, 0);
	IT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "holder failed");
	IT_CHECK(r.pay_rc == CONCERT_EEXPIRED, "%s holder paid an overtaken hold: %s",
		 lagging ? "lagging" : "stopped", concert_error_name(r.pay_rc));
	IT_CHECK(r.balance == FUNDS, "holder's balance %lld, expected %d untouched",
		 (long long)r.balance, FUNDS);

	concert_seat_list *seats = NULL;
	IT_RC(concert_seats_list(b, &seats, v->schedule_id), 0);
	for (size_t i = 0; seats && i < seats->count; i++)
		if (seats->items[i].seat_no == seat)
			IT_CHECK(seats->items[i].state == CONCERT_SEAT_RESERVED, "seat %d not reserved",
				 (int)seat);
	concert_free(seats);
	concert_reservation *res = NULL;
	if (paid) {
		IT_RC(concert_reservation_get(b, &res, paid->reservation_id), 0);
		IT_CHECK(res && strcmp(res->user_id, user_b) == 0, "the seat is not B's");
	}
	int64_t balance = -1;
	IT_RC(concert_wallet_balance(b, &balance, user_b), 0);
	IT_CHECK(balance == FUNDS - PRICE, "B's balance %lld", (long long)balance);
	concert_free(res);
	concert_free(paid);
	concert_free(hold);
	close(up[0]);
	close(down[1]);
}

int main(void)
{
	char uri[IT_URI_MAX];
	it_uri(uri, "stalled", 2);
	it_clock *clock = it_clock_new();
	concert_engine *b = it_engine(uri, clock, HOLD_TTL);
	it_venue v;
	it_make_venue(b, &v, 2, PRICE);
	scenario(uri, clock, b, &v, 0, 1);
	scenario(uri, clock, b, &v, 1, 2);
	PGconn *db = it_db(uri);
	it_check_invariants(db);
	IT_CHECK(it_db_int(db, "SELECT count(*) FROM reservations") == 2, "expected 2 reservations");
	IT_CHECK(it_db_int(db, "SELECT count(*) FROM seat_holds WHERE state = 3 AND user_id LIKE "
			       "'stalled-%'") == 0, "a stalled hold was paid");
	PQfinish(db);
	concert_engine_close(b);
	return it_finish("stalled holder");
}
