/*
 * The points wallet.
 */
#include "core/engine.h"

const char *concert_tx_kind_name(int kind)
{
	static const char *const names[] = { "UNKNOWN", "CHARGE", "PAYMENT", "REFUND" };
	return (kind >= CONCERT_TX_CHARGE && kind <= CONCERT_TX_REFUND) ? names[kind] : "UNKNOWN";
}

#define HISTORY_LIMIT_MAX 1000

int concert_wallet_charge(concert_engine *e, int64_t *out_balance, const char *user_id,
			  int64_t amount, const char *idem_key)
{
	engine_begin();
	if (!e)
		return concert_sys_error(CONCERT_EINVAL, "engine is NULL");
	int64_t balance = 0;
	int rc = check_user_id(user_id);
	if (rc == 0)
		rc = check_amount(amount);
	if (rc == 0)
		rc = check_idem_key(idem_key);
	if (rc == 0)
		rc = e->store->charge(e->store_ctx, &balance, user_id, amount, idem_key,
				      concert_engine_now(e));
	if (rc == 0 && out_balance)
		*out_balance = balance;
	return engine_finish(e, CONCERT_OP_CHARGE, rc);
}

int concert_wallet_balance(concert_engine *e, int64_t *out_balance, const char *user_id)
{
	REQUIRE_ENGINE(e, out_balance);
	int rc = check_user_id(user_id);
	if (rc == 0)
		rc = e->store->balance(e->store_ctx, out_balance, user_id);
	return engine_finish(e, CONCERT_OP_WALLET_READ, rc);
}

int concert_wallet_history(concert_engine *e, concert_wallet_tx_list **out, const char *user_id,
			   int64_t cursor, size_t limit)
{
	REQUIRE_ENGINE(e, out);
	*out = NULL;
	int rc = check_user_id(user_id);
	if (rc == 0 && cursor < 0)
		rc = concert_sys_error(CONCERT_EINVAL, "cursor must not be negative");
	if (rc == 0 && (limit == 0 || limit > HISTORY_LIMIT_MAX))
		rc = concert_sys_errorf(CONCERT_EINVAL, "limit must be 1..%d", HISTORY_LIMIT_MAX);
	if (rc == 0)
		rc = e->store->history(e->store_ctx, out, user_id, cursor, limit);
	return engine_finish(e, CONCERT_OP_WALLET_READ, rc);
}
