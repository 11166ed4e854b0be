/*
 * quickstart: the whole booking flow on the embedded memory backend.
 *
 *   enter queue -> admitted -> browse seats -> hold 2 seats -> charge -> pay
 *
 * Build: part of the project (examples/), or against an installed library:
 *   cc quickstart.c $(pkg-config --cflags --libs concert)
 * Run:   ./quickstart [store-uri]      (default "memory:")
 */
#include <stdio.h>
#include <stdlib.h>

#include <concert.h>

/* Prints the failing call and the library's detail, then exits. */
static void check(int rc, const char *what)
{
	if (rc == 0)
		return;
	fprintf(stderr, "%s failed: %s (%s)\n", what, concert_strerror(rc),
		concert_error_last()->message);
	exit(1);
}

static int64_t create_concert(concert_engine *engine)
{
	concert_time now = concert_engine_now(engine);
	int64_t concert_id, schedule_id;
	check(concert_concert_add(engine, &concert_id, "libconcert live", now,
				  now + 30LL * 24 * 3600 * 1000), "concert_concert_add");
	check(concert_schedule_add(engine, &schedule_id, concert_id, now + 7LL * 24 * 3600 * 1000,
				   "Olympic Hall"), "concert_schedule_add");

	concert_seat_spec seats[10];
	for (int i = 0; i < 10; i++) {
		seats[i].seat_no = i + 1;
		seats[i].grade = i < 4 ? "VIP" : "R";
		seats[i].price = i < 4 ? 150000 : 99000;
	}
	check(concert_seats_add(engine, schedule_id, seats, 10), "concert_seats_add");
	printf("created concert %lld with schedule %lld (10 seats)\n",
	       (long long)concert_id, (long long)schedule_id);
	return concert_id;
}

static void print_seats(concert_engine *engine, int64_t schedule_id)
{
	concert_seat_list *seats;
	check(concert_seats_list(engine, &seats, schedule_id), "concert_seats_list");
	printf("seat map of schedule %lld:\n", (long long)schedule_id);
	for (size_t i = 0; i < seats->count; i++)
		printf("  seat %2d  %-3s  %7lld  %s\n", (int)seats->items[i].seat_no,
		       seats->items[i].grade, (long long)seats->items[i].price,
		       concert_seat_state_name(seats->items[i].state));
	concert_free(seats);
}

int main(int argc, char **argv)
{
	concert_options opts;
	concert_engine *engine;
	const char *user = "user-42";

	check(concert_options_init(&opts, CONCERT_OPTIONS_VERSION), "concert_options_init");
	opts.store = argc > 1 ? argv[1] : "memory:";
	opts.max_active = 1;
	check(concert_engine_open(&engine, &opts), "concert_engine_open");
	printf("libconcert %s, store %s\n", concert_version(), opts.store);

	int64_t concert_id = create_concert(engine);

	/* 1. Enter the waiting queue: the first user is admitted at once. */
	concert_queue_status *ticket;
	check(concert_queue_enter(engine, &ticket, user, concert_id), "concert_queue_enter");
	printf("%s entered the queue: %s, position %lld\n", user,
	       concert_queue_state_name(ticket->state), (long long)ticket->position);

	concert_queue_status *status;
	check(concert_queue_status_get(engine, &status, ticket->token), "concert_queue_status_get");
	printf("queue status: %s until %lld (token %.24s...)\n", concert_queue_state_name(status->state),
	       (long long)status->expires_at, status->token);

	/* 2. Browse. */
	concert_schedule_list *schedules;
	check(concert_schedules_list(engine, &schedules, concert_id), "concert_schedules_list");
	int64_t schedule_id = schedules->items[0].id;
	printf("schedule %lld at %s: %lld seats available\n", (long long)schedule_id,
	       schedules->items[0].venue, (long long)schedules->items[0].available_seats);
	concert_free(schedules);
	print_seats(engine, schedule_id);

	/* 3. Hold two seats, all or nothing. */
	int32_t wanted[] = { 3, 4 };
	concert_hold *hold;
	check(concert_hold_seats(engine, &hold, status->token, schedule_id, wanted, 2),
	      "concert_hold_seats");
	printf("hold %lld: seats %d and %d for %lld points, expires at %lld\n", (long long)hold->id,
	       (int)hold->seat_nos[0], (int)hold->seat_nos[1], (long long)hold->amount,
	       (long long)hold->expires_at);

	/* 4. Charge the wallet (idempotent by key) and pay. */
	int64_t balance;
	check(concert_wallet_charge(engine, &balance, user, 400000, "charge-1"), "concert_wallet_charge");
	printf("charged: balance %lld\n", (long long)balance);

	concert_payment *payment;
	check(concert_pay(engine, &payment, status->token, hold->id, "pay-1"), "concert_pay");
	printf("paid: payment %lld, reservation %lld, amount %lld, balance %lld\n",
	       (long long)payment->payment_id, (long long)payment->reservation_id,
	       (long long)payment->amount, (long long)payment->balance);
	print_seats(engine, schedule_id);

	/* 5. Paying used the token up, which frees an ACTIVE slot: the next user
	 *    is admitted, but the seats are gone and the error lists them. */
	concert_queue_status *next;
	check(concert_queue_enter(engine, &next, "user-7", concert_id), "concert_queue_enter");
	printf("user-7 entered the queue: %s\n", concert_queue_state_name(next->state));
	int32_t overlap[] = { 4, 5 };
	int rc = concert_hold_seats(engine, NULL, next->token, schedule_id, overlap, 2);
	const concert_error *err = concert_error_last();
	printf("user-7 holding seats 4-5: %s, conflicts:", concert_strerror(rc));
	for (size_t i = 0; i < err->conflict_count; i++)
		printf(" %d", (int)err->conflicts[i]);
	printf("\n");
	concert_free(next);

	concert_free(payment);
	concert_free(hold);
	concert_free(status);
	concert_free(ticket);
	concert_engine_close(engine);
	return 0;
}
