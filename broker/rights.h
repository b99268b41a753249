//  rights - what one key may do (ZMP.md section 18): the services it may
//  serve and call, the pipelines it may push to and pull from, and whether
//  it may use the management service. Pure logic: parsed from the text a
//  certificate carries, matched with fnmatch(3).
#ifndef ZM_RIGHTS_H_INCLUDED
#define ZM_RIGHTS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    ZM_RIGHT_SERVE,             //  READY: register as a worker of a service
    ZM_RIGHT_CALL,              //  CALL a service
    ZM_RIGHT_PUSH,              //  PUSH into a pipeline
    ZM_RIGHT_PULL,              //  CONSUME a pipeline
    ZM_RIGHT_COUNT
} zm_right_t;

typedef struct {
    char **patterns[ZM_RIGHT_COUNT];    //  owned, NULL-terminated; NULL: none
    bool admin;                         //  may call the reserved zmesh.* services
} zm_rights_t;

//  The certificate metadata name of a right: "serve", "call", "push", "pull".
const char *zm_right_name(zm_right_t right);

//  Sets right's patterns from a comma-separated list (NULL or empty: none;
//  blanks around items are ignored), replacing what it had.
void zm_rights_set(zm_rights_t *self, zm_right_t right, const char *list);

//  Frees the patterns; the struct is all-none afterwards.
void zm_rights_clear(zm_rights_t *self);

//  True if the key may do right on name. A reserved "zmesh." name is
//  matched by no pattern: only an admin key may call one, and none may
//  serve, push or pull one.
bool zm_rights_allow(const zm_rights_t *self, zm_right_t right, const char *name);

#endif
