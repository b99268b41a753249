//  idle_workers.h - many idle zmesh workers in one process, for the broker
//  CPU figure. Each is one DEALER connection that speaks ZMP as a worker with
//  no requests would (schemas/ZMP.md section 10): READY with the zmesh
//  worker's default heartbeat interval and liveness, then HEARTBEAT whenever
//  it has sent nothing for an interval, and it reads whatever the broker
//  sends. zmesh_worker_t would need two threads and six descriptors per
//  worker, which 10,000 of them do not fit in; the wire traffic is the same.
#ifndef BENCH_IDLE_WORKERS_H_INCLUDED
#define BENCH_IDLE_WORKERS_H_INCLUDED

//  Connects count workers to endpoint, writes one byte to ready_fd once every
//  READY is sent, and serves until SIGTERM. Returns 0, or 1 on a failure.
int idle_workers_run(const char *endpoint, int count, int ready_fd);

#endif
