/*
 * Result allocation: every object handed to a caller is one malloc block,
 * so concert_free() releases it with everything it points to.
 */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

const char *concert_version(void)
{
	return CONCERT_VERSION;
}

void concert_free(void *object)
{
	free(object);
}

void concert_sys_strlcpy(char *dst, const char *src, size_t dst_size)
{
	if (!dst_size)
		return;
	size_t n = src ? concert_strnlen(src, dst_size - 1) : 0;
	if (n > dst_size - 1)
		n = dst_size - 1;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

size_t concert_strnlen(const char *s, size_t max)
{
	const char *end = memchr(s, '\0', max + 1);
	return end ? (size_t)(end - s) : max + 1;
}

/* A header followed by `count` items; the items pointer is set by the caller. */
static void *block_alloc(size_t header, size_t item, size_t count, void **items)
{
	size_t align = _Alignof(max_align_t);
	size_t offset = (header + align - 1) / align * align;
	if (count && item > (SIZE_MAX - offset) / count)
		return NULL;
	unsigned char *p = calloc(1, offset + item * count);
	if (p && items)
		*items = count ? p + offset : NULL;
	return p;
}

#define LIST_ALLOC(fn, list_type, item_type)                                       \
	list_type *fn(size_t count)                                                \
	{                                                                          \
		void *items;                                                       \
		list_type *l = block_alloc(sizeof(list_type), sizeof(item_type), count, &items); \
		if (l) {                                                           \
			l->count = count;                                          \
			l->items = items;                                          \
		}                                                                  \
		return l;                                                          \
	}

LIST_ALLOC(concert_sys_concert_list_alloc, concert_concert_list, concert_concert)
LIST_ALLOC(concert_sys_schedule_list_alloc, concert_schedule_list, concert_schedule)
LIST_ALLOC(concert_sys_seat_list_alloc, concert_seat_list, concert_seat)
LIST_ALLOC(concert_sys_tx_list_alloc, concert_wallet_tx_list, concert_wallet_tx)

#define SEATS_ALLOC(fn, type)                                                      \
	type *fn(size_t seat_count)                                                \
	{                                                                          \
		void *seats;                                                       \
		type *o = block_alloc(sizeof(type), sizeof(int32_t), seat_count, &seats); \
		if (o) {                                                           \
			o->seat_count = seat_count;                                \
			o->seat_nos = seats;                                       \
		}                                                                  \
		return o;                                                          \
	}

SEATS_ALLOC(concert_sys_hold_alloc, concert_hold)
SEATS_ALLOC(concert_sys_payment_alloc, concert_payment)
SEATS_ALLOC(concert_sys_reservation_alloc, concert_reservation)

concert_concert *concert_sys_concert_alloc(void)
{
	return calloc(1, sizeof(concert_concert));
}

concert_schedule *concert_sys_schedule_alloc(void)
{
	return calloc(1, sizeof(concert_schedule));
}

concert_audit *concert_sys_audit_alloc(void)
{
	return calloc(1, sizeof(concert_audit));
}
