//  fuzz_common - what the fuzz targets share: an oracle check that stays on
//  in every build (the targets' asserts are the oracle, so NDEBUG must not
//  remove them), and a cursor that turns fuzzer bytes into numbers and
//  frames without reading past the input. It keeps no state of its own:
//  everything lives in the caller's cursor, so runs cannot leak into each
//  other.
#ifndef ZM_FUZZ_COMMON_H_INCLUDED
#define ZM_FUZZ_COMMON_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Aborts with the failed condition when an oracle does not hold.
#define ZM_FUZZ_CHECK(cond) ((cond) ? (void) 0 : zm_fuzz_fail(#cond, __FILE__, __LINE__))

void zm_fuzz_fail(const char *what, const char *file, int line) __attribute__((noreturn));

//  The libFuzzer entry points every target defines; replay_main.c calls them too.
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

//  A read cursor over the fuzzer's input. Reads past the end give zeros and
//  empty frames, so a target never has to check for the end mid-decision.
typedef struct {
    const uint8_t *data;    //  borrowed: the input
    size_t size;            //  bytes in data
    size_t offset;          //  next byte to read
} zm_fuzz_cursor_t;

void zm_fuzz_cursor_init(zm_fuzz_cursor_t *self, const uint8_t *data, size_t size);

//  Bytes not read yet.
size_t zm_fuzz_left(const zm_fuzz_cursor_t *self);

//  The next byte, or 0 at the end.
uint8_t zm_fuzz_byte(zm_fuzz_cursor_t *self);

//  The next two bytes, big-endian; missing bytes read as 0.
uint16_t zm_fuzz_u16(zm_fuzz_cursor_t *self);

//  A new frame of the next size bytes, or of what is left if that is less.
zframe_t *zm_fuzz_frame(zm_fuzz_cursor_t *self, size_t size);

//  Silences CZMQ's log sink and signal handlers: the broker logs every bad
//  message, which would bury the fuzzer's own output. Call once, from
//  LLVMFuzzerInitialize.
void zm_fuzz_quiet(void);

#endif
