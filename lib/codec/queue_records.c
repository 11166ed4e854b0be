/*
 * Journal records of the memory queue: msgpack arrays (see queue_records.h).
 */
#include <string.h>

#include <msgpack.h>

#include "codec/queue_records.h"
#include "core/internal.h"

/* Records are packed into a caller's stack buffer: no allocation per record. */
typedef struct fixed_buffer {
	uint8_t *data;
	size_t cap;
	size_t len;
} fixed_buffer;

static int fixed_write(void *data, const char *bytes, size_t len)
{
	fixed_buffer *b = data;
	if (len > b->cap - b->len)
		return -1;
	memcpy(b->data + b->len, bytes, len);
	b->len += len;
	return 0;
}

static int pack_user(msgpack_packer *pk, const char *user_id)
{
	size_t len = concert_strnlen(user_id, CONCERT_USER_ID_MAX);
	if (len > CONCERT_USER_ID_MAX)
		return -1;
	return msgpack_pack_str_with_body(pk, user_id, len);
}

/* LEAVE, DONE and EXPIRE share one layout. */
static int pack_token_event(msgpack_packer *pk, const queue_record *r)
{
	return msgpack_pack_array(pk, 4) || msgpack_pack_int(pk, r->type) ||
	       msgpack_pack_int64(pk, r->concert_id) || msgpack_pack_int64(pk, r->token_id) ||
	       msgpack_pack_int64(pk, r->at);
}

static int pack_admit(msgpack_packer *pk, const queue_record *r)
{
	if (r->id_count > QUEUE_ADMIT_BATCH)
		return -1;
	int rc = msgpack_pack_array(pk, 4) || msgpack_pack_int(pk, r->type) ||
		 msgpack_pack_int64(pk, r->concert_id) || msgpack_pack_int64(pk, r->expires_at) ||
		 msgpack_pack_array(pk, r->id_count);
	for (size_t i = 0; !rc && i < r->id_count; i++)
		rc = msgpack_pack_int64(pk, r->ids[i]);
	return rc;
}

static int pack_record(msgpack_packer *pk, const queue_record *r)
{
	switch (r->type) {
	case QUEUE_RECORD_ENTER:
		return msgpack_pack_array(pk, 8) || msgpack_pack_int(pk, r->type) ||
		       msgpack_pack_int64(pk, r->token_id) || msgpack_pack_int64(pk, r->concert_id) ||
		       msgpack_pack_int64(pk, r->seq) || pack_user(pk, r->user_id) ||
		       msgpack_pack_int64(pk, r->issued_at) || msgpack_pack_int64(pk, r->expires_at) ||
		       msgpack_pack_int64(pk, r->wait_idle_ttl);
	case QUEUE_RECORD_ADMIT:
		return pack_admit(pk, r);
	case QUEUE_RECORD_LEAVE:
	case QUEUE_RECORD_DONE:
	case QUEUE_RECORD_EXPIRE:
		return pack_token_event(pk, r);
	case QUEUE_RECORD_TOKEN:
		return msgpack_pack_array(pk, 9) || msgpack_pack_int(pk, r->type) ||
		       msgpack_pack_int64(pk, r->token_id) || msgpack_pack_int64(pk, r->concert_id) ||
		       msgpack_pack_int64(pk, r->seq) || pack_user(pk, r->user_id) ||
		       msgpack_pack_int32(pk, r->state) || msgpack_pack_int64(pk, r->issued_at) ||
		       msgpack_pack_int64(pk, r->expires_at) || msgpack_pack_int64(pk, r->wait_idle_ttl);
	case QUEUE_RECORD_CONCERT:
		return msgpack_pack_array(pk, 4) || msgpack_pack_int(pk, r->type) ||
		       msgpack_pack_int64(pk, r->concert_id) || msgpack_pack_int64(pk, r->seq) ||
		       msgpack_pack_uint64(pk, r->counter);
	case QUEUE_RECORD_COUNTER:
		return msgpack_pack_array(pk, 2) || msgpack_pack_int(pk, r->type) ||
		       msgpack_pack_uint64(pk, r->counter);
	}
	return -1;
}

size_t queue_record_encode(const queue_record *r, uint8_t *buf, size_t cap)
{
	fixed_buffer b = { buf, cap, 0 };
	msgpack_packer pk;
	msgpack_packer_init(&pk, &b, fixed_write);
	return pack_record(&pk, r) ? 0 : b.len;
}

/* Decoding walks the array with a cursor; any mismatch marks it bad. */
typedef struct field_cursor {
	const msgpack_object *items;
	uint32_t count;
	uint32_t next;
	int bad;
} field_cursor;

static const msgpack_object *next_field(field_cursor *c)
{
	if (c->next >= c->count) {
		c->bad = 1;
		return NULL;
	}
	return &c->items[c->next++];
}

static int64_t read_i64(field_cursor *c)
{
	const msgpack_object *o = next_field(c);
	if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
		return (int64_t)o->via.u64;
	if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return o->via.i64;
	c->bad = 1;
	return 0;
}

static uint64_t read_u64(field_cursor *c)
{
	const msgpack_object *o = next_field(c);
	if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		return o->via.u64;
	c->bad = 1;
	return 0;
}

static void read_user(field_cursor *c, char *out)
{
	const msgpack_object *o = next_field(c);
	if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 ||
	    o->via.str.size > CONCERT_USER_ID_MAX ||
	    memchr(o->via.str.ptr, '\0', o->via.str.size)) {
		c->bad = 1;
		return;
	}
	memcpy(out, o->via.str.ptr, o->via.str.size);
	out[o->via.str.size] = '\0';
}

static void read_ids(field_cursor *c, queue_record *r)
{
	const msgpack_object *o = next_field(c);
	if (!o || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > QUEUE_ADMIT_BATCH) {
		c->bad = 1;
		return;
	}
	field_cursor ids = { o->via.array.ptr, o->via.array.size, 0, 0 };
	r->id_count = o->via.array.size;
	for (size_t i = 0; i < r->id_count; i++)
		r->ids[i] = read_i64(&ids);
	c->bad |= ids.bad;
}

static void read_fields(field_cursor *c, queue_record *r)
{
	switch (r->type) {
	case QUEUE_RECORD_ENTER:
		r->token_id = read_i64(c);
		r->concert_id = read_i64(c);
		r->seq = read_i64(c);
		read_user(c, r->user_id);
		r->issued_at = read_i64(c);
		r->expires_at = read_i64(c);
		r->wait_idle_ttl = read_i64(c);
		break;
	case QUEUE_RECORD_ADMIT:
		r->concert_id = read_i64(c);
		r->expires_at = read_i64(c);
		read_ids(c, r);
		break;
	case QUEUE_RECORD_LEAVE:
	case QUEUE_RECORD_DONE:
	case QUEUE_RECORD_EXPIRE:
		r->concert_id = read_i64(c);
		r->token_id = read_i64(c);
		r->at = read_i64(c);
		break;
	case QUEUE_RECORD_TOKEN:
		r->token_id = read_i64(c);
		r->concert_id = read_i64(c);
		r->seq = read_i64(c);
		read_user(c, r->user_id);
		r->state = (int32_t)read_i64(c);
		r->issued_at = read_i64(c);
		r->expires_at = read_i64(c);
		r->wait_idle_ttl = read_i64(c);
		break;
	case QUEUE_RECORD_CONCERT:
		r->concert_id = read_i64(c);
		r->seq = read_i64(c);
		r->counter = read_u64(c);
		break;
	case QUEUE_RECORD_COUNTER:
		r->counter = read_u64(c);
		break;
	default:
		c->bad = 1;
	}
}

int queue_record_decode(queue_record *out, const uint8_t *payload, size_t len)
{
	memset(out, 0, sizeof(*out));
	msgpack_unpacked msg;
	msgpack_unpacked_init(&msg);
	size_t offset = 0;
	int bad = msgpack_unpack_next(&msg, (const char *)payload, len, &offset) !=
			  MSGPACK_UNPACK_SUCCESS ||
		  offset != len || msg.data.type != MSGPACK_OBJECT_ARRAY;
	if (!bad) {
		field_cursor c = { msg.data.via.array.ptr, msg.data.via.array.size, 0, 0 };
		out->type = (queue_record_type)read_i64(&c);
		read_fields(&c, out);
		/* Fields appended by a newer version are ignored, not an error. */
		bad = c.bad;
	}
	msgpack_unpacked_destroy(&msg);
	return bad ? concert_sys_error(CONCERT_ECORRUPT, "malformed queue journal record") : 0;
}
