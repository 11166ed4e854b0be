/*
 * --demo: one concert with two schedules of 50 seats each.
 */
#ifndef HTTP_DEMO_H
#define HTTP_DEMO_H

#include "server.h"

/* Seeds the demo data unless the store already has a concert (so a durable
 * store restarted with --demo is not seeded twice). 0 or a CONCERT_E* code. */
int demo_seed(app *a);

#endif
