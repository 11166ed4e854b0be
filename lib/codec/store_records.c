/*
 * The memory store's records: one layout string per type drives both the
 * encoder and the strict decoder, so the two cannot drift apart.
 */
#include <stdlib.h>
#include <string.h>

#include "codec/store_records.h"
#include "core/internal.h"

#define TX_FIELDS 6
#define SEAT_SPEC_FIELDS 3
#define SEAT_STATE_FIELDS 7

/*
 * Layout letters, each one element after the type tag:
 *   i id  c concert_id  s schedule_id  h hold_id  p payment_id  a amount  b balance
 *   O opens_at  C closes_at  S starts_at  t created_at  e expires_at
 *   X state  P op  E extensions
 *   n title  v venue  u user_id  k idem_key or nil  K idem_key
 *   N [seat_no...]  x tx  L [seat spec...]  M [seat state...]  Y [tx...]
 *   D [hold_id...]  Z [counter...]
 */
static const char *const layouts[] = {
	[STORE_RECORD_CONCERT] = "inOC",
	[STORE_RECORD_SCHEDULE] = "icSv",
	[STORE_RECORD_SEATS] = "sL",
	[STORE_RECORD_HOLD] = "isuteaN",
	[STORE_RECORD_RELEASE] = "iaN",
	[STORE_RECORD_EXTEND] = "ieE",
	[STORE_RECORD_CHARGE] = "ukx",
	[STORE_RECORD_PAY] = "ihpkx",
	[STORE_RECORD_CANCEL] = "ix",
	[STORE_RECORD_DROP] = "D",
	[STORE_RECORD_SEAT_STATE] = "sM",
	[STORE_RECORD_HOLD_STATE] = "isuteaNXE",
	[STORE_RECORD_WALLET] = "ubY",
	[STORE_RECORD_IDEM] = "uPKabhi",
	[STORE_RECORD_RESERVATION] = "isuhpaXtbN",
	[STORE_RECORD_COUNTERS] = "Z",
};

#define LAYOUT_COUNT (sizeof(layouts) / sizeof(layouts[0]))

static const char *layout_of(int64_t type)
{
	return type > 0 && (uint64_t)type < LAYOUT_COUNT ? layouts[type] : NULL;
}

/* The int64 field a letter names, or NULL if the letter is not one. */
static int64_t *int_field(store_record *r, char letter)
{
	switch (letter) {
	case 'i': return &r->id;
	case 'c': return &r->concert_id;
	case 's': return &r->schedule_id;
	case 'h': return &r->hold_id;
	case 'p': return &r->payment_id;
	case 'a': return &r->amount;
	case 'b': return &r->balance;
	case 'O': return &r->opens_at;
	case 'C': return &r->closes_at;
	case 'S': return &r->starts_at;
	case 't': return &r->created_at;
	case 'e': return &r->expires_at;
	default: return NULL;
	}
}

/* ---- encoding ---------------------------------------------------------- */

void store_record_buf_init(store_record_buf *buf)
{
	buf->data = buf->local;
	buf->len = 0;
	buf->cap = sizeof(buf->local);
	buf->oom = false;
}

void store_record_buf_free(store_record_buf *buf)
{
	if (buf->data != buf->local)
		free(buf->data);
	store_record_buf_init(buf);
}

static int buf_write(void *data, const char *bytes, size_t n)
{
	store_record_buf *b = data;
	if (b->oom)
		return -1;
	if (n > b->cap - b->len) {
		size_t cap = b->cap * 2;
		while (cap - b->len < n)
			cap *= 2;
		uint8_t *p = b->data == b->local ? malloc(cap) : realloc(b->data, cap);
		if (!p) {
			b->oom = true;
			return -1;
		}
		if (b->data == b->local)
			memcpy(p, b->local, b->len);
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, bytes, n);
	b->len += n;
	return 0;
}

static void pack_string(msgpack_packer *pk, const char *s)
{
	if (!s) {
		msgpack_pack_nil(pk);
		return;
	}
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void pack_tx(msgpack_packer *pk, const store_tx_record *tx)
{
	msgpack_pack_array(pk, TX_FIELDS);
	msgpack_pack_int64(pk, tx->id);
	msgpack_pack_int32(pk, tx->kind);
	msgpack_pack_int64(pk, tx->amount);
	msgpack_pack_int64(pk, tx->balance_after);
	msgpack_pack_int64(pk, tx->ref_id);
	msgpack_pack_int64(pk, tx->created_at);
}

static void pack_seat(msgpack_packer *pk, const store_seat_record *seat, bool full)
{
	msgpack_pack_array(pk, full ? SEAT_STATE_FIELDS : SEAT_SPEC_FIELDS);
	msgpack_pack_int32(pk, seat->seat_no);
	msgpack_pack_int64(pk, seat->price);
	pack_string(pk, seat->grade);
	if (full) {
		msgpack_pack_int32(pk, seat->state);
		msgpack_pack_int64(pk, seat->version);
		msgpack_pack_int64(pk, seat->owner);
		msgpack_pack_int64(pk, seat->hold_expires_at);
	}
}

static void pack_list(msgpack_packer *pk, const store_record *r, char letter)
{
	switch (letter) {
	case 'N':
		msgpack_pack_array(pk, r->seat_count);
		for (size_t i = 0; i < r->seat_count; i++)
			msgpack_pack_int32(pk, r->seat_nos[i]);
		break;
	case 'L':
	case 'M':
		msgpack_pack_array(pk, r->count);
		for (size_t i = 0; i < r->count; i++)
			pack_seat(pk, &r->seats[i], letter == 'M');
		break;
	case 'Y':
		msgpack_pack_array(pk, r->count);
		for (size_t i = 0; i < r->count; i++)
			pack_tx(pk, &r->txs[i]);
		break;
	case 'D':
		msgpack_pack_array(pk, r->count);
		for (size_t i = 0; i < r->count; i++)
			msgpack_pack_int64(pk, r->ids[i]);
		break;
	case 'Z':
		msgpack_pack_array(pk, STORE_COUNTER_COUNT);
		for (size_t i = 0; i < STORE_COUNTER_COUNT; i++)
			msgpack_pack_int64(pk, r->counters[i]);
		break;
	}
}

static void pack_field(msgpack_packer *pk, const store_record *r, char letter)
{
	const int64_t *i64 = int_field((store_record *)r, letter);
	if (i64) {
		msgpack_pack_int64(pk, *i64);
		return;
	}
	switch (letter) {
	case 'X': msgpack_pack_int32(pk, r->state); break;
	case 'P': msgpack_pack_int32(pk, r->op); break;
	case 'E': msgpack_pack_uint32(pk, r->extensions); break;
	case 'n': pack_string(pk, r->title); break;
	case 'v': pack_string(pk, r->venue); break;
	case 'u': pack_string(pk, r->user_id); break;
	case 'k':
	case 'K': pack_string(pk, r->idem_key); break;
	case 'x': pack_tx(pk, &r->tx); break;
	default: pack_list(pk, r, letter); break;
	}
}

int store_record_encode(store_record_buf *buf, const store_record *r)
{
	const char *layout = layout_of(r->type);
	if (!layout || r->seat_count > CONCERT_HOLD_SEATS_MAX)
		return concert_sys_errorf(CONCERT_EINVAL, "store record %d cannot be encoded", (int)r->type);
	msgpack_packer pk;
	buf->len = 0;
	buf->oom = false;
	msgpack_packer_init(&pk, buf, buf_write);
	size_t fields = strlen(layout);
	msgpack_pack_array(&pk, fields + 1);
	msgpack_pack_int32(&pk, (int32_t)r->type);
	for (size_t i = 0; i < fields; i++)
		pack_field(&pk, r, layout[i]);
	return buf->oom ? concert_sys_error(CONCERT_ENOMEM, NULL) : 0;
}

/* ---- decoding ---------------------------------------------------------- */

void store_record_reader_init(store_record_reader *rd)
{
	msgpack_unpacked_init(&rd->unpacked);
}

void store_record_reader_free(store_record_reader *rd)
{
	msgpack_unpacked_destroy(&rd->unpacked);
}

typedef struct decoder {
	msgpack_zone *zone;
	store_record *r;
	char letter;    /* the field being decoded, for messages */
} decoder;

static int bad(const decoder *d, const char *why)
{
	return concert_sys_errorf(CONCERT_ECORRUPT, "store record %d, field '%c': %s",
				  (int)d->r->type, d->letter, why);
}

static int get_int(const decoder *d, const msgpack_object *o, int64_t min, int64_t max, int64_t *out)
{
	int64_t v = 0;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
		v = (int64_t)o->via.u64;
	else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		v = o->via.i64;
	else
		return bad(d, "not an integer");
	if (v < min || v > max)
		return bad(d, "integer out of range");
	*out = v;
	return 0;
}

static int get_i32(const decoder *d, const msgpack_object *o, int32_t *out)
{
	int64_t v = 0;
	int rc = get_int(d, o, INT32_MIN, INT32_MAX, &v);
	if (rc == 0)
		*out = (int32_t)v;
	return rc;
}

/* A copy NUL-terminated in the zone; nil gives NULL when `nullable`. */
static int get_string(const decoder *d, const msgpack_object *o, size_t min, size_t max,
		      bool nullable, const char **out)
{
	if (nullable && o->type == MSGPACK_OBJECT_NIL) {
		*out = NULL;
		return 0;
	}
	if (o->type != MSGPACK_OBJECT_STR)
		return bad(d, "not a string");
	size_t n = o->via.str.size;
	if (n < min || n > max || (n && memchr(o->via.str.ptr, '\0', n)))
		return bad(d, "string of a wrong length or with a NUL");
	char *s = msgpack_zone_malloc(d->zone, n + 1);
	if (!s)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	if (n)
		memcpy(s, o->via.str.ptr, n);
	s[n] = '\0';
	*out = s;
	return 0;
}

/* The array in `o`, checking its length; *items may be NULL when empty. */
static int get_array(const decoder *d, const msgpack_object *o, size_t min, size_t max,
		     const msgpack_object **items, size_t *count)
{
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return bad(d, "not an array");
	if (o->via.array.size < min || o->via.array.size > max)
		return bad(d, "array of a wrong length");
	*items = o->via.array.ptr;
	*count = o->via.array.size;
	return 0;
}

static void *zone_array(const decoder *d, size_t count, size_t size)
{
	return count ? msgpack_zone_malloc(d->zone, count * size) : NULL;
}

#define NOMEM_IF_NULL(p, count) \
	do { if ((count) && !(p)) return concert_sys_error(CONCERT_ENOMEM, NULL); } while (0)

static int get_tx(const decoder *d, const msgpack_object *o, store_tx_record *tx)
{
	const msgpack_object *f = NULL;
	size_t n = 0;
	int rc = get_array(d, o, TX_FIELDS, TX_FIELDS, &f, &n);
	if (rc == 0)
		rc = get_int(d, &f[0], INT64_MIN, INT64_MAX, &tx->id);
	if (rc == 0)
		rc = get_i32(d, &f[1], &tx->kind);
	if (rc == 0)
		rc = get_int(d, &f[2], INT64_MIN, INT64_MAX, &tx->amount);
	if (rc == 0)
		rc = get_int(d, &f[3], INT64_MIN, INT64_MAX, &tx->balance_after);
	if (rc == 0)
		rc = get_int(d, &f[4], INT64_MIN, INT64_MAX, &tx->ref_id);
	if (rc == 0)
		rc = get_int(d, &f[5], INT64_MIN, INT64_MAX, &tx->created_at);
	return rc;
}

static int get_seat(const decoder *d, const msgpack_object *o, bool full, store_seat_record *seat)
{
	const msgpack_object *f = NULL;
	size_t n = 0, want = full ? SEAT_STATE_FIELDS : SEAT_SPEC_FIELDS;
	memset(seat, 0, sizeof(*seat));
	int rc = get_array(d, o, want, want, &f, &n);
	if (rc == 0)
		rc = get_i32(d, &f[0], &seat->seat_no);
	if (rc == 0)
		rc = get_int(d, &f[1], INT64_MIN, INT64_MAX, &seat->price);
	if (rc == 0)
		rc = get_string(d, &f[2], 1, CONCERT_GRADE_MAX, false, &seat->grade);
	if (rc == 0 && full)
		rc = get_i32(d, &f[3], &seat->state);
	if (rc == 0 && full)
		rc = get_int(d, &f[4], INT64_MIN, INT64_MAX, &seat->version);
	if (rc == 0 && full)
		rc = get_int(d, &f[5], INT64_MIN, INT64_MAX, &seat->owner);
	if (rc == 0 && full)
		rc = get_int(d, &f[6], INT64_MIN, INT64_MAX, &seat->hold_expires_at);
	return rc;
}

static int get_seat_nos(const decoder *d, const msgpack_object *o)
{
	const msgpack_object *items = NULL;
	size_t n = 0;
	int rc = get_array(d, o, 0, CONCERT_HOLD_SEATS_MAX, &items, &n);
	if (rc < 0)
		return rc;
	int32_t *nos = zone_array(d, n, sizeof(*nos));
	NOMEM_IF_NULL(nos, n);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = get_i32(d, &items[i], &nos[i]);
	d->r->seat_nos = nos;
	d->r->seat_count = n;
	return rc;
}

static int get_seats(const decoder *d, const msgpack_object *o, bool full)
{
	const msgpack_object *items = NULL;
	size_t n = 0;
	int rc = get_array(d, o, 0, SIZE_MAX, &items, &n);
	if (rc < 0)
		return rc;
	store_seat_record *seats = zone_array(d, n, sizeof(*seats));
	NOMEM_IF_NULL(seats, n);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = get_seat(d, &items[i], full, &seats[i]);
	d->r->seats = seats;
	d->r->count = n;
	return rc;
}

static int get_txs(const decoder *d, const msgpack_object *o)
{
	const msgpack_object *items = NULL;
	size_t n = 0;
	int rc = get_array(d, o, 0, SIZE_MAX, &items, &n);
	if (rc < 0)
		return rc;
	store_tx_record *txs = zone_array(d, n, sizeof(*txs));
	NOMEM_IF_NULL(txs, n);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = get_tx(d, &items[i], &txs[i]);
	d->r->txs = txs;
	d->r->count = n;
	return rc;
}

static int get_ids(const decoder *d, const msgpack_object *o)
{
	const msgpack_object *items = NULL;
	size_t n = 0;
	int rc = get_array(d, o, 0, SIZE_MAX, &items, &n);
	if (rc < 0)
		return rc;
	int64_t *ids = zone_array(d, n, sizeof(*ids));
	NOMEM_IF_NULL(ids, n);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = get_int(d, &items[i], INT64_MIN, INT64_MAX, &ids[i]);
	d->r->ids = ids;
	d->r->count = n;
	return rc;
}

static int get_counters(const decoder *d, const msgpack_object *o)
{
	const msgpack_object *items = NULL;
	size_t n = 0;
	int rc = get_array(d, o, STORE_COUNTER_COUNT, STORE_COUNTER_COUNT, &items, &n);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = get_int(d, &items[i], INT64_MIN, INT64_MAX, &d->r->counters[i]);
	return rc;
}

static int get_field(decoder *d, const msgpack_object *o, char letter)
{
	store_record *r = d->r;
	int64_t v = 0;
	int64_t *i64 = int_field(r, letter);
	int rc;
	d->letter = letter;
	if (i64)
		return get_int(d, o, INT64_MIN, INT64_MAX, i64);
	switch (letter) {
	case 'X': return get_i32(d, o, &r->state);
	case 'P': return get_i32(d, o, &r->op);
	case 'E':
		rc = get_int(d, o, 0, UINT32_MAX, &v);
		r->extensions = (uint32_t)v;
		return rc;
	case 'n': return get_string(d, o, 1, CONCERT_TITLE_MAX, false, &r->title);
	case 'v': return get_string(d, o, 0, CONCERT_VENUE_MAX, false, &r->venue);
	case 'u': return get_string(d, o, 1, CONCERT_USER_ID_MAX, false, &r->user_id);
	case 'k': return get_string(d, o, 1, CONCERT_IDEM_KEY_MAX, true, &r->idem_key);
	case 'K': return get_string(d, o, 1, CONCERT_IDEM_KEY_MAX, false, &r->idem_key);
	case 'x': return get_tx(d, o, &r->tx);
	case 'N': return get_seat_nos(d, o);
	case 'L': return get_seats(d, o, false);
	case 'M': return get_seats(d, o, true);
	case 'Y': return get_txs(d, o);
	case 'D': return get_ids(d, o);
	case 'Z': return get_counters(d, o);
	default: return concert_sys_errorf(CONCERT_EINTERNAL, "store record layout letter '%c'", letter);
	}
}

int store_record_decode(store_record_reader *rd, store_record *out, const uint8_t *payload,
			size_t len)
{
	size_t off = 0;
	memset(out, 0, sizeof(*out));
	msgpack_unpack_return ret = msgpack_unpack_next(&rd->unpacked, (const char *)payload, len, &off);
	if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	if (ret != MSGPACK_UNPACK_SUCCESS || off != len)
		return concert_sys_error(CONCERT_ECORRUPT, "store record is not one msgpack value");
	const msgpack_object *root = &rd->unpacked.data;
	if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size == 0)
		return concert_sys_error(CONCERT_ECORRUPT, "store record is not a tagged array");
	const msgpack_object *items = root->via.array.ptr;
	int64_t type = 0;
	const char *layout = NULL;
	if (items[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER && items[0].via.u64 < LAYOUT_COUNT) {
		type = (int64_t)items[0].via.u64;
		layout = layout_of(type);
	}
	if (!layout)
		return concert_sys_error(CONCERT_ECORRUPT, "store record of an unknown type");
	out->type = (store_record_type)type;
	size_t fields = strlen(layout);
	if (root->via.array.size != fields + 1)
		return concert_sys_errorf(CONCERT_ECORRUPT, "store record %d has %u fields, not %zu",
					  (int)type, root->via.array.size - 1, fields);
	decoder d = { rd->unpacked.zone, out, 0 };
	int rc = 0;
	for (size_t i = 0; i < fields && rc == 0; i++)
		rc = get_field(&d, &items[i + 1], layout[i]);
	return rc;
}
