/*
 * libconcert — an embeddable concert reservation engine.
 * Umbrella header: includes every public area.
 */
#ifndef CONCERT_H
#define CONCERT_H

#include "concert/common.h"
#include "concert/errors.h"
#include "concert/engine.h"
#include "concert/catalog.h"
#include "concert/token.h"
#include "concert/queue.h"
#include "concert/hold.h"
#include "concert/wallet.h"
#include "concert/payment.h"

#endif
