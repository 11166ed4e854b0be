/*
 * Argument checks shared by the engine's areas. Each failure names the
 * argument, so a caller can tell which one was wrong.
 */
#include <stdlib.h>
#include <string.h>

#include "core/engine.h"

static int check_string(const char *s, size_t max, const char *what)
{
	if (!s)
		return concert_sys_errorf(CONCERT_EINVAL, "%s is NULL", what);
	size_t len = concert_strnlen(s, max);
	if (len == 0)
		return concert_sys_errorf(CONCERT_EINVAL, "%s is empty", what);
	if (len > max)
		return concert_sys_errorf(CONCERT_EINVAL, "%s is longer than %zu bytes", what, max);
	return 0;
}

int check_user_id(const char *user_id)
{
	return check_string(user_id, CONCERT_USER_ID_MAX, "user_id");
}

int check_idem_key(const char *idem_key)
{
	return idem_key ? check_string(idem_key, CONCERT_IDEM_KEY_MAX, "idempotency key") : 0;
}

int check_id(int64_t id, const char *what)
{
	return id > 0 ? 0 : concert_sys_errorf(CONCERT_EINVAL, "%s must be positive", what);
}

int check_amount(int64_t amount)
{
	return amount > 0 ? 0 : concert_sys_error(CONCERT_EINVAL, "amount must be positive");
}

int check_title(const char *title)
{
	return check_string(title, CONCERT_TITLE_MAX, "title");
}

int check_venue(const char *venue)
{
	if (venue && concert_strnlen(venue, CONCERT_VENUE_MAX) > CONCERT_VENUE_MAX)
		return concert_sys_errorf(CONCERT_EINVAL, "venue is longer than %d bytes", CONCERT_VENUE_MAX);
	return 0;
}

int check_grade(const char *grade)
{
	return check_string(grade, CONCERT_GRADE_MAX, "grade");
}

static int compare_seat(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return (x > y) - (x < y);
}

/* Hold lists are a handful of seats, where qsort's set-up costs more than an
 * insertion sort; seat maps being created can be large. */
static void sort_seats(int32_t *seats, size_t count)
{
	if (count > 16) {
		qsort(seats, count, sizeof(*seats), compare_seat);
		return;
	}
	for (size_t i = 1; i < count; i++) {
		int32_t v = seats[i];
		size_t j = i;
		for (; j > 0 && seats[j - 1] > v; j--)
			seats[j] = seats[j - 1];
		seats[j] = v;
	}
}

int check_seat_nos(const int32_t *seat_nos, size_t count, size_t max, int32_t *sorted)
{
	if (!seat_nos || count == 0)
		return concert_sys_error(CONCERT_EINVAL, "no seats given");
	if (count > max)
		return concert_sys_errorf(CONCERT_EINVAL, "more than %zu seats", max);
	for (size_t i = 0; i < count; i++) {
		if (seat_nos[i] <= 0)
			return concert_sys_errorf(CONCERT_EINVAL, "seat number %d is not positive",
						  (int)seat_nos[i]);
		sorted[i] = seat_nos[i];
	}
	sort_seats(sorted, count);
	for (size_t i = 1; i < count; i++)
		if (sorted[i] == sorted[i - 1])
			return concert_sys_errorf(CONCERT_EINVAL, "seat %d given twice", (int)sorted[i]);
	return 0;
}
