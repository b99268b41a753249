//  engine_repl - replicated services (ZMP.md section 20). Work in progress.
#include "engine_internal.h"

void
zm_engine_repl_on_join(zm_engine_t *self, zframe_t **routing_p, const char *id,
                       zm_proto_t *command, int64_t now)
{
    (void) id;
    (void) command;
    (void) now;
    zm_engine_disconnect(self, *routing_p, ZM_STATUS_MALFORMED, "replicated services: not yet");
}
