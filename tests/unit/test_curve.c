//  test_curve - the client side of CURVE (zmesh_curve, zm_secure): loading a
//  secret certificate and the broker's key, refusing what is unusable with a
//  reason, and applying a copy to a socket. Sockets are made, never
//  connected: nothing goes on the network.
#include "zm_curve.h"
#include "zm_secure.h"
#include "zmesh.h"

#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

//  A private directory with a client key pair and a broker key pair.
typedef struct {
    char dir[64];
    char secret[128];               //  the client's secret file, mode 0600
    char broker_file[128];          //  the broker's public file
    char client_key[ZM_CURVE_KEY_TXT];
    char broker_key[ZM_CURVE_KEY_TXT];
} s_fixture_t;

//  Saves a new key pair as dir/name.key and dir/name.key_secret (0600); key gets its public key.
static void
s_make_pair(const char *dir, const char *name, char *key)
{
    zcert_t *cert = zcert_new();
    assert_non_null(cert);
    char path[128];
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    assert_int_equal(zcert_save(cert, path), 0);
    strcat(path, "_secret");
    assert_int_equal(chmod(path, 0600), 0);
    memcpy(key, zcert_public_txt(cert), ZM_CURVE_KEY_TXT);
    zcert_destroy(&cert);
}

static int
s_setup(void **state)
{
    s_fixture_t *self = calloc(1, sizeof *self);
    assert_non_null(self);
    snprintf(self->dir, sizeof self->dir, "/tmp/zmesh-test-curve.XXXXXX");
    assert_non_null(mkdtemp(self->dir));
    s_make_pair(self->dir, "client", self->client_key);
    s_make_pair(self->dir, "broker", self->broker_key);
    snprintf(self->secret, sizeof self->secret, "%s/client.key_secret", self->dir);
    snprintf(self->broker_file, sizeof self->broker_file, "%s/broker.key", self->dir);
    *state = self;
    return 0;
}

static int
s_teardown(void **state)
{
    s_fixture_t *self = *state;
    zdir_t *dir = zdir_new(self->dir, NULL);
    if (dir) {
        zdir_remove(dir, true);
        zdir_destroy(&dir);
    }
    free(self);
    return 0;
}

static void
test_curve_loads_a_private_secret_and_a_z85_key(void **state)
{
    s_fixture_t *self = *state;
    int err = ZMESH_EINVAL;
    zmesh_curve_t *curve = zmesh_curve_new(self->secret, self->broker_key, &err);
    assert_non_null(curve);
    assert_int_equal(err, ZMESH_OK);
    assert_string_equal(zmesh_curve_error(), "");
    assert_string_equal(zmesh_curve_public_key(curve), self->client_key);
    zmesh_curve_destroy(&curve);
    assert_null(curve);
    zmesh_curve_destroy(&curve);        //  NULL is fine
}

static void
test_curve_takes_the_broker_key_from_its_file(void **state)
{
    s_fixture_t *self = *state;
    zmesh_curve_t *curve = zmesh_curve_new(self->secret, self->broker_file, NULL);
    assert_non_null(curve);
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    zm_secure_apply(curve, sock);
    char *server_key = zsock_curve_serverkey(sock);
    assert_string_equal(server_key, self->broker_key);
    free(server_key);
    zsock_destroy(&sock);
    zmesh_curve_destroy(&curve);
}

static void
test_curve_refuses_a_secret_others_may_read(void **state)
{
    s_fixture_t *self = *state;
    assert_int_equal(chmod(self->secret, 0640), 0);
    int err = ZMESH_OK;
    assert_null(zmesh_curve_new(self->secret, self->broker_key, &err));
    assert_int_equal(err, ZMESH_EINVAL);
    assert_non_null(strstr(zmesh_curve_error(), "has mode 0640"));
    assert_non_null(strstr(zmesh_curve_error(), self->secret));
    //  A later success clears the reason.
    assert_int_equal(chmod(self->secret, 0600), 0);
    zmesh_curve_t *curve = zmesh_curve_new(self->secret, self->broker_key, &err);
    assert_non_null(curve);
    assert_string_equal(zmesh_curve_error(), "");
    zmesh_curve_destroy(&curve);
}

static void
test_curve_refuses_a_file_without_a_secret_key(void **state)
{
    s_fixture_t *self = *state;
    //  The broker's public file, made private, and with no _secret file beside it.
    char path[160];
    snprintf(path, sizeof path, "%s/public-only", self->dir);
    zcert_t *cert = zcert_load(self->broker_file);
    assert_non_null(cert);
    assert_int_equal(zcert_save_public(cert, path), 0);
    zcert_destroy(&cert);
    assert_int_equal(chmod(path, 0600), 0);
    int err = ZMESH_OK;
    assert_null(zmesh_curve_new(path, self->broker_key, &err));
    assert_int_equal(err, ZMESH_EINVAL);
    assert_non_null(strstr(zmesh_curve_error(), "holds no secret key"));
}

static void
test_curve_refuses_a_bad_broker_key(void **state)
{
    s_fixture_t *self = *state;
    char short_key[ZM_CURVE_KEY_TXT];
    snprintf(short_key, sizeof short_key, "%.39s", self->broker_key);
    const char *bad[] = {"not a key", short_key, "/nonexistent/broker.key"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int err = ZMESH_OK;
        assert_null(zmesh_curve_new(self->secret, bad[i], &err));
        assert_int_equal(err, ZMESH_EINVAL);
        assert_non_null(strstr(zmesh_curve_error(), "neither a 40-character Z85 key"));
    }
}

static void
test_curve_refuses_missing_arguments(void **state)
{
    s_fixture_t *self = *state;
    int err = ZMESH_OK;
    assert_null(zmesh_curve_new(NULL, self->broker_key, &err));
    assert_int_equal(err, ZMESH_EINVAL);
    assert_string_equal(zmesh_curve_error(), "no secret key file given");
    assert_null(zmesh_curve_new(self->secret, "", &err));
    assert_string_equal(zmesh_curve_error(), "no broker key given");
    assert_null(zmesh_curve_new(self->dir, self->broker_key, NULL));     //  a directory
    assert_non_null(strstr(zmesh_curve_error(), "not a regular file"));
}

//  What an object keeps is its own: the caller may destroy its keys at once.
static void
test_curve_copy_outlives_the_original(void **state)
{
    s_fixture_t *self = *state;
    zmesh_curve_t *curve = zmesh_curve_new(self->secret, self->broker_key, NULL);
    assert_non_null(curve);
    zmesh_curve_t *copy = zm_secure_dup(curve);
    zmesh_curve_destroy(&curve);
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    zm_secure_apply(copy, sock);
    assert_int_equal(zsock_mechanism(sock), ZMQ_CURVE);
    char *public_key = zsock_curve_publickey(sock);
    char *server_key = zsock_curve_serverkey(sock);
    assert_string_equal(public_key, self->client_key);
    assert_string_equal(server_key, self->broker_key);
    free(public_key);
    free(server_key);
    assert_non_null(strstr(zm_secure_hint(copy), "keys directory"));
    zsock_destroy(&sock);
    zmesh_curve_destroy(&copy);
}

static void
test_curve_null_means_plain(void **state)
{
    (void) state;
    assert_null(zm_secure_dup(NULL));
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    zm_secure_apply(NULL, sock);
    assert_int_equal(zsock_mechanism(sock), ZMQ_NULL);
    zsock_destroy(&sock);
    assert_string_equal(zm_secure_hint(NULL), "");
}

//  The objects take the keys without connecting: creation checks nothing more than before.
static void
test_curve_objects_take_the_keys(void **state)
{
    s_fixture_t *self = *state;
    zmesh_curve_t *curve = zmesh_curve_new(self->secret, self->broker_key, NULL);
    assert_non_null(curve);
    char endpoint[128];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/nobroker", self->dir);
    int err = ZMESH_EINVAL;
    zmesh_client_t *client = zmesh_client_new_secure(endpoint, curve, &err);
    assert_int_equal(err, ZMESH_OK);
    zmesh_worker_t *worker = zmesh_worker_new_secure(endpoint, "echo", curve, &err);
    assert_int_equal(err, ZMESH_OK);
    zmesh_producer_t *producer = zmesh_producer_new_secure(endpoint, "jobs", curve, &err);
    assert_int_equal(err, ZMESH_OK);
    zmesh_consumer_t *consumer = zmesh_consumer_new_secure(endpoint, "jobs", curve, &err);
    assert_int_equal(err, ZMESH_OK);
    zmesh_curve_destroy(&curve);        //  before the objects: they hold copies
    assert_null(zmesh_client_new_secure("bogus://x", curve, &err));
    assert_int_equal(err, ZMESH_EINVAL);
    zmesh_consumer_destroy(&consumer);
    zmesh_producer_destroy(&producer);
    zmesh_worker_destroy(&worker);
    zmesh_client_destroy(&client);
}

static void
test_curve_denied_has_its_own_error(void **state)
{
    (void) state;
    assert_int_equal(ZMESH_EDENIED, -12);
    assert_string_equal(zmesh_strerror(ZMESH_EDENIED), "denied by the broker's access rules");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_curve_loads_a_private_secret_and_a_z85_key,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_curve_takes_the_broker_key_from_its_file, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_curve_refuses_a_secret_others_may_read, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_curve_refuses_a_file_without_a_secret_key, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_curve_refuses_a_bad_broker_key, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_curve_refuses_missing_arguments, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_curve_copy_outlives_the_original, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_curve_null_means_plain, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_curve_objects_take_the_keys, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_curve_denied_has_its_own_error, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests_name("curve", tests, NULL, NULL);
}
