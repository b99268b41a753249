//  link - what the broker knows of one producer connection on one pipeline
//  (ZMP.md section 16.4): the next seq it takes, the last seq to report in
//  ACCEPT, and whether the producer was refused and waits for RESUME.
#ifndef ZM_LINK_H_INCLUDED
#define ZM_LINK_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

struct zm_pipeline;

typedef struct zm_link {
    char *key;                  //  owned: "routing hex/pipeline", its key in the engine
    zframe_t *routing;          //  owned: the producer's routing id
    struct zm_pipeline *pipeline;   //  borrowed: a pipeline outlives its links
    uint64_t expected;          //  the next seq it takes; 0 until the first PUSH
    uint64_t report;            //  highest settled seq not yet reported; 0 = none
    void *report_handle;        //  its place in the engine's ACCEPT list, or NULL
    bool refused;               //  sent REFUSE 503 for `expected`: later seqs are skipped
    uint64_t granted;           //  the last seq its last RESUME granted; 0 = no limit
    size_t refused_size;        //  body bytes of the message last refused for room
    void *waiting_handle;       //  its place in pipeline->waiting (wants RESUME), or NULL
    int64_t last_heard;         //  ms
} zm_link_t;

//  Takes *routing_p.
zm_link_t *zm_link_new(const char *key, zframe_t **routing_p, struct zm_pipeline *pipeline,
                       int64_t now);
void zm_link_destroy(zm_link_t **self_p);

#endif
