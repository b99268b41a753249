//  zmesh_setup.c - broker, keys and child processes of the zmesh benchmarks.
#include "zmesh_setup.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

void
bench_setup_start(bench_setup_t *self, bool curve, const char *const *extra)
{
    const char *args[32];
    size_t count = 0;
    self->curve = curve;
    self->peer_curve = NULL;
    if (curve) {
        bench_keys_make(&self->keys);
        args[count++] = "--curve-secret";
        args[count++] = self->keys.broker_secret;
        args[count++] = "--curve-keys";
        args[count++] = self->keys.keys_dir;
    }
    for (size_t i = 0; extra && extra[i] && count < 31; i++)
        args[count++] = extra[i];
    args[count] = NULL;
    bench_broker_start(&self->broker, NULL, args);
}

const zmesh_curve_t *
bench_setup_curve(bench_setup_t *self)
{
    if (!self->curve)
        return NULL;
    if (!self->peer_curve) {
        int err = 0;
        self->peer_curve = zmesh_curve_new(self->keys.peer_secret, self->keys.broker_public, &err);
        if (!self->peer_curve)
            bench_fail("cannot load the CURVE keys: %s", zmesh_curve_error());
    }
    return self->peer_curve;
}

void
bench_setup_stop(bench_setup_t *self)
{
    bench_broker_stop(&self->broker);
    zmesh_curve_destroy(&self->peer_curve);
    if (self->curve)
        bench_keys_remove(&self->keys);
}

pid_t
bench_spawn(int (*body)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        bench_fail("fork failed");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);   //  a failing benchmark leaves no orphans
        _exit(body(arg));
    }
    return pid;
}

int
bench_reap(pid_t pid, int timeout_ms)
{
    int status = 0;
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}
