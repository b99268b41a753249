//  zm_endpoints - a comma-separated list of broker endpoints, as clients
//  and workers take it ("tcp://a:5555,tcp://b:5555"), walked in turn when a
//  broker stops answering.
#ifndef ZM_ENDPOINTS_H_INCLUDED
#define ZM_ENDPOINTS_H_INCLUDED

#include <stddef.h>

typedef struct zm_endpoints zm_endpoints_t;

//  Parses list; blanks around entries are dropped. NULL if the list or any
//  entry is empty.
zm_endpoints_t *zm_endpoints_new(const char *list);
void zm_endpoints_destroy(zm_endpoints_t **self_p);

//  The endpoint to use now, borrowed.
const char *zm_endpoints_current(const zm_endpoints_t *self);

//  Moves to the next endpoint (round the list) and returns it, borrowed.
const char *zm_endpoints_next(zm_endpoints_t *self);

size_t zm_endpoints_size(const zm_endpoints_t *self);

#endif
