//  zm_log - one-line logs, `component: event key=value`, on stderr through
//  CZMQ's zsys log sink. Debug lines appear only in verbose mode, since CZMQ
//  4.2 has no level filter of its own.
#ifndef ZM_LOG_H_INCLUDED
#define ZM_LOG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  Sends logs to stderr under ident (a program name). Call once at start.
void zm_log_init(const char *ident, bool verbose);
bool zm_log_verbose(void);

void zm_log_error(const char *format, ...) __attribute__((format(printf, 1, 2)));
void zm_log_warning(const char *format, ...) __attribute__((format(printf, 1, 2)));
void zm_log_notice(const char *format, ...) __attribute__((format(printf, 1, 2)));
void zm_log_info(const char *format, ...) __attribute__((format(printf, 1, 2)));
void zm_log_debug(const char *format, ...) __attribute__((format(printf, 1, 2)));

//  Writes at most 32 bytes of data as hex into buffer (at least 65 bytes),
//  for drop logs: enough to recognise garbage, never a whole payload.
const char *zm_log_hex(char *buffer, const void *data, size_t size);

#endif
