//  proto_fixture.h - what the codec's unit tests (test_proto.c, test_proto_pipe.c,
//  test_proto_repl.c) share: a cmocka fixture that owns everything a test allocates, so that
//  a failed assertion, which jumps out of the test, leaks nothing; headers packed item by
//  item; messages framed as a DEALER peer sends them ([empty][header][body?]); decodes that
//  must succeed, or must be refused with a given status, id and command, leaving the message
//  whole; and the encode-decode round trip with its envelope checks. Every check fails the
//  running test through cmocka; nothing here opens a socket or sleeps.
#ifndef ZT_PROTO_FIXTURE_H_INCLUDED
#define ZT_PROTO_FIXTURE_H_INCLUDED

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "zm_pack.h"
#include "zm_proto.h"
#include "zmesh.h"

//  A byte string literal and its length; literals may hold NUL bytes.
#define BYTES(literal) literal, sizeof(literal) - 1
#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

//  Typed variadic arguments for zt_proto_header: va_arg must read what was passed.
#define U(value) ((uint64_t) (value))
#define I(value) ((int64_t) (value))

//  A test with the fixture below as its *state.
#define ZT_PROTO_TEST(name) cmocka_unit_test_setup_teardown(name, zt_proto_setup, zt_proto_teardown)

//  Limits as the broker sets them: checked bodies, default depth and size.
extern const zm_proto_limits_t zt_proto_checked;

//  Everything a test allocates; teardown frees it whatever the test reached.
typedef struct {
    zm_proto_t in;                  //  command to encode; owns its body
    zm_proto_t self;                //  decoded command; owns its body
    zmsg_t *msg;                    //  owned: the message being decoded, if any
    zmesh_pack_t *pack;             //  owned: the header being built, if any
    uint8_t *data;                  //  owned: a large body or buffer, if any
    char name[ZM_NAME_MAX + 2];     //  ZM_NAME_MAX + 1 'p's: a name one byte too long
} zt_proto_fixture_t;

//  cmocka fixture: *state becomes a zeroed zt_proto_fixture_t; teardown frees it all.
int zt_proto_setup(void **state);
int zt_proto_teardown(void **state);

//  Builds the header ["ZMP1", command, items...] in fx->pack. spec has one letter per item:
//  'u' a uint64_t, 'i' an int64_t, 's' a NUL-terminated str, 'b' true, 'n' nil. Wrap numbers
//  in U() or I().
void zt_proto_header(zt_proto_fixture_t *fx, const char *command, const char *spec, ...);

//  A new message [empty][header] and, if body is not NULL, [body]: a DEALER peer's message.
zmsg_t *zt_proto_frames(const void *header, size_t header_size, const void *body,
                        size_t body_size);

//  Replaces fx->msg with [empty][the header in fx->pack] and `bodies` copies of body.
void zt_proto_message(zt_proto_fixture_t *fx, int bodies, const void *body, size_t body_size);

//  A new frame holding a copy of data.
zframe_t *zt_proto_frame(const void *data, size_t size);

//  Decodes fx->msg, which must be good, into fx->self; the body, if any, must have moved out
//  of it. Destroys fx->msg. label names the case in a failure.
void zt_proto_accept(zt_proto_fixture_t *fx, const zm_proto_limits_t *limits, const char *label);

//  Decodes fx->msg, which must be refused with status and a reason, with have_id (and then
//  the id); nothing may be taken from the message, no body left in fx->self. Destroys fx->msg
//  and returns the error.
zm_proto_error_t zt_proto_refuse(zt_proto_fixture_t *fx, const zm_proto_limits_t *limits,
                                 const char *label, zm_status_t status, bool have_id,
                                 uint64_t id);

//  zt_proto_refuse, and the refusal must still name cmd: the command was readable.
void zt_proto_refuse_cmd(zt_proto_fixture_t *fx, const zm_proto_limits_t *limits,
                         const char *label, zm_cmd_t cmd, zm_status_t status, bool have_id,
                         uint64_t id);

//  Whether ZMP.md gives cmd a body frame.
bool zt_proto_has_body(zm_cmd_t cmd);

//  Encodes fx->in (taking its body), checks the envelope ([empty][header][body if the command
//  has one], a header of at most ZM_HEADER_MAX bytes holding one msgpack object) and decodes
//  it back into fx->self with zt_proto_checked. Copies the header frame to header
//  (ZM_HEADER_MAX bytes); returns its size.
size_t zt_proto_round_trip(zt_proto_fixture_t *fx, uint8_t *header);

//  actual (size bytes) must be expected, byte for byte.
void zt_proto_assert_bytes(const uint8_t *actual, size_t size, const char *expected,
                           size_t expected_size);

#endif
