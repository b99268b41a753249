//  broker - the transport of zmesh-broker: the only code that binds, polls,
//  reads the clock and sends. It feeds the engine and drains its outbox.
#ifndef ZM_BROKER_H_INCLUDED
#define ZM_BROKER_H_INCLUDED

#include "engine.h"

typedef struct {
    const char *bind;           //  borrowed endpoint, e.g. tcp://127.0.0.1:5555
    const char *push_bind;      //  borrowed push endpoint (PULL), or NULL for none
    bool print_endpoint;        //  print the bound endpoint on stdout (for tests)
    const char *curve_secret;   //  borrowed: the broker's secret certificate file, or NULL
    const char *curve_keys;     //  borrowed: directory of the keys let in (with curve_secret)
    bool insecure;              //  allow a non-loopback endpoint without CURVE
    zm_engine_config_t engine;
} zm_broker_config_t;

//  True if endpoint is reachable from this host only (loopback, ipc, inproc).
bool zm_broker_endpoint_local(const char *endpoint);

//  Serves until SIGINT/SIGTERM. Returns 0, or 1 if an endpoint cannot be
//  bound or security cannot be set up as asked.
int zm_broker_run(const zm_broker_config_t *config);

#endif
