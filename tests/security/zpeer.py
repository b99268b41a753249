#!/usr/bin/python3
"""zpeer.py - the Python peers of the security tests: well-behaved and hostile
ZMP/1 clients, workers and producers (pyzmq, CURVE through the same CZMQ
certificate files the zmesh programs use), a status reader, and whole attack
scenarios that need several sockets in one process (routing id theft, a
worker answering for another, claimed metadata, a removed key, a flood of raw
TCP connections).

Each subcommand prints what it saw and exits 0 when the broker behaved as the
spec says, 1 when it did not (the reason on stderr), 2 on a usage error and 3
when a plain call got no answer. It never changes the broker; the shell tests
start the programs and read the status.
"""

import argparse
import json
import os
import random
import signal
import socket
import sys
import threading
import time

import msgpack
import zmq
import zmq.auth

SIG = "ZMP1"


def fail(message):
    print("zpeer: FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def note(message):
    print("zpeer: " + message, flush=True)


def public_key(text):
    """A public key given as 40 characters of Z85, or as a certificate file."""
    if len(text) == 40 and not os.path.exists(text):
        return text.encode()
    public, _ = zmq.auth.load_certificate(text)
    return public


def new_socket(ctx, kind, args, routing_id=None, metadata=()):
    """A socket set up from the common options: CURVE (--secret and
    --server-key), PLAIN (--plain), or nothing at all (the NULL mechanism)."""
    sock = ctx.socket(kind)
    sock.linger = 0
    if getattr(args, "secret", None):
        public, secret = zmq.auth.load_certificate(args.secret)
        if secret is None:
            fail("%s holds no secret key" % args.secret)
        sock.curve_publickey = public
        sock.curve_secretkey = secret
        sock.curve_serverkey = public_key(args.server_key)
    elif getattr(args, "plain", False):
        sock.plain_username = b"admin"
        sock.plain_password = b"admin"
    if routing_id is not None:
        sock.routing_id = routing_id
    for item in metadata:
        sock.setsockopt(zmq.METADATA, item.encode())
    return sock


def header(*fields):
    return msgpack.packb([SIG] + list(fields))


def recv_until(sock, deadline):
    """The next message as a list of frames, or None once deadline (monotonic
    seconds) has passed."""
    left = deadline - time.monotonic()
    if left <= 0 or not sock.poll(int(left * 1000) + 1, zmq.POLLIN):
        return None
    return sock.recv_multipart()


def decode(frames):
    """A DEALER's view of a ZMP message: (header list, body or None)."""
    if len(frames) < 2 or frames[0] != b"":
        return None, None
    head = msgpack.unpackb(frames[1])
    body = msgpack.unpackb(frames[2]) if len(frames) > 2 else None
    return head, body


class Client:
    """A DEALER client: CALLs with request ids of its own."""

    def __init__(self, ctx, endpoint, args, **kwargs):
        self.sock = new_socket(ctx, zmq.DEALER, args, **kwargs)
        self.sock.connect(endpoint)
        self.next_id = 1

    def send(self, service, body, timeout_ms=5000):
        request_id = self.next_id
        self.next_id += 1
        self.sock.send_multipart([b"", header("CALL", request_id, service, timeout_ms),
                                  msgpack.packb(body)])
        return request_id

    def wait(self, request_id, wait_ms):
        """(status, body) of the REPLY to request_id, or (None, None) when
        nothing answers it within wait_ms."""
        deadline = time.monotonic() + wait_ms / 1000
        while True:
            frames = recv_until(self.sock, deadline)
            if frames is None:
                return None, None
            head, body = decode(frames)
            if head and head[1] == "REPLY" and head[2] == request_id:
                return head[3], body

    def call(self, service, body, timeout_ms=5000, wait_ms=None):
        request_id = self.send(service, body, timeout_ms)
        return self.wait(request_id, timeout_ms + 1000 if wait_ms is None else wait_ms)


class Worker:
    """A worker speaking ZMP/1 by hand (section 7.2), with a routing id of
    our choosing. It heartbeats whenever it polls."""

    def __init__(self, ctx, endpoint, args, service, routing_id=None, secret=None):
        if secret:
            args = argparse.Namespace(**vars(args))
            args.secret = secret
        self.sock = new_socket(ctx, zmq.DEALER, args, routing_id=routing_id)
        self.sock.connect(endpoint)
        self.sock.send_multipart([b"", header("READY", service, 1, 1000, 3, 0)])
        self.sent_at = time.monotonic()
        self.seen = []                          # every header received

    def beat(self):
        if time.monotonic() - self.sent_at > 0.5:
            self.sock.send_multipart([b"", header("HEARTBEAT")])
            self.sent_at = time.monotonic()

    def next(self, wait_ms, command="REQUEST"):
        """The next (header, body) of the given command within wait_ms,
        heartbeating meanwhile; (None, None) if none came."""
        deadline = time.monotonic() + wait_ms / 1000
        while time.monotonic() < deadline:
            self.beat()
            frames = recv_until(self.sock, min(deadline, time.monotonic() + 0.2))
            if frames is None:
                continue
            head, body = decode(frames)
            self.seen.append(head)
            if head and head[1] == command:
                return head, body
        return None, None

    def reply(self, ticket, body, status=200):
        self.sock.send_multipart([b"", header("REPLY", ticket, status), msgpack.packb(body)])
        self.sent_at = time.monotonic()


def add_curve_options(parser, required=False):
    parser.add_argument("--secret", required=required,
                        help="this peer's secret certificate (CURVE)")
    parser.add_argument("--server-key", help="the broker's public key: Z85 or a cert file")
    parser.add_argument("--plain", action="store_true", help="use the PLAIN mechanism")


# ---- simple subcommands -------------------------------------------------------------------

def cmd_status(args):
    """Calls zmesh.status and prints the body as JSON; exit 3 without an
    answer, 1 with an answer other than 200."""
    ctx = zmq.Context()
    client = Client(ctx, args.endpoint, args)
    status, body = client.call("zmesh.status", None, timeout_ms=args.timeout_ms)
    ctx.destroy(linger=0)
    if status is None:
        print("zpeer: status: no answer", file=sys.stderr)
        return 3
    if status != 200:
        print("zpeer: status: %s %s" % (status, body), file=sys.stderr)
        return 1
    print(json.dumps(body))
    return 0


def cmd_call(args):
    """One CALL; prints {"status": .., "body": ..}; exit 3 if no answer came
    within --wait-ms."""
    ctx = zmq.Context()
    client = Client(ctx, args.endpoint, args, metadata=args.metadata)
    status, body = client.call(args.service, json.loads(args.body), args.timeout_ms,
                               args.wait_ms)
    ctx.destroy(linger=0)
    print(json.dumps({"status": status, "body": body}))
    return 3 if status is None else 0


def cmd_push_plain(args):
    """A plain PUSH socket on the push endpoint (section 16.7): count
    messages {"n": i} (with "from": TAG if given) into the pipeline; nothing
    answers."""
    ctx = zmq.Context()
    sock = new_socket(ctx, zmq.PUSH, args)
    sock.connect(args.endpoint)
    head = msgpack.packb([SIG, "PUSH", args.pipeline, 0, 0])
    for n in range(1, args.count + 1):
        body = {"n": n, "from": args.tag} if args.tag else {"n": n}
        sock.send_multipart([head, msgpack.packb(body)])
    sock.close(linger=args.linger_ms)
    ctx.term()
    note("pushed %d messages into %s" % (args.count, args.pipeline))
    return 0


def cmd_get(args):
    """Prints the value of a Python expression over a status file (s = the
    parsed JSON); exit 1 if it raises."""
    with open(args.file) as f:
        s = json.load(f)
    try:
        value = eval(args.expr, {"s": s})  # noqa: S307 - our own test's expression
    except Exception as error:  # noqa: BLE001
        print("zpeer: get %s: %r" % (args.expr, error), file=sys.stderr)
        return 1
    print(json.dumps(value) if not isinstance(value, str) else value)
    return 0


# ---- scenarios ----------------------------------------------------------------------------

def cmd_metadata(args):
    """A peer with a valid key (allowed to call echo only) claims more in
    connection metadata: another key as User-Id, serve/call/admin rights.
    libzmq lets an application send only names that start with "X-" (it
    refuses ZMQ_METADATA "User-Id:..." with EINVAL), and the broker takes the
    User-Id ZAP set, never a property the peer sent, so none of this may
    change what it can do."""
    ctx = zmq.Context()
    probe = ctx.socket(zmq.DEALER)
    try:
        probe.setsockopt(zmq.METADATA, b"User-Id:" + public_key(args.claim))
        note("libzmq accepted metadata named User-Id; the broker must still ignore it")
    except zmq.ZMQError as error:
        note("libzmq refuses metadata named User-Id (%s)" % error.strerror)
    probe.close()
    claims = ["X-User-Id:" + public_key(args.claim).decode(), "X-Admin:yes", "X-Serve:*",
              "X-Call:*", "X-Name:admin"]
    client = Client(ctx, args.endpoint, args, metadata=claims)
    status, body = client.call("echo", {"ok": 1})
    if status != 200:
        fail("echo, which the key may call, answered %s %r" % (status, body))
    note("call echo with claimed metadata: 200")
    for service in ("zmesh.status", "kv"):
        status, body = client.call(service, None)
        if status != 403 or not str(body).startswith("denied"):
            fail("call %s with claimed rights: expected 403 denied, got %s %r"
                 % (service, status, body))
        note("call %s with claimed rights: 403 %s" % (service, body))
    worker = new_socket(ctx, zmq.DEALER, args, metadata=claims)
    worker.connect(args.endpoint)
    worker.send_multipart([b"", header("READY", "kv", 1, 1000, 3, 0)])
    frames = recv_until(worker, time.monotonic() + 5)
    head, _ = decode(frames) if frames else (None, None)
    if not head or head[1] != "DISCONNECT" or head[2] != 403:
        fail("READY kv with claimed rights: expected DISCONNECT 403, got %r" % (head,))
    note("READY kv with claimed rights: DISCONNECT 403 %s" % head[3])
    ctx.destroy(linger=0)
    return 0


def cmd_theft(args):
    """A victim worker (serves echo, fixed routing id) and a thief with
    another valid key and the same routing id. The thief must get none of the
    victim's traffic, and a REPLY it sends for the victim's ticket must not
    reach the client: first while the victim is connected, then after the
    victim's connection closed holding a call, when a fresh thief connection
    takes the routing id over."""
    ctx = zmq.Context()
    rid = b"victim-worker"
    victim = Worker(ctx, args.endpoint, args, "echo", routing_id=rid, secret=args.victim)
    thieves = []
    client = Client(ctx, args.endpoint, argparse.Namespace(
        secret=args.client, server_key=args.server_key))

    def thief_socket():
        sock = new_socket(ctx, zmq.DEALER, argparse.Namespace(
            secret=args.thief, server_key=args.server_key), routing_id=rid)
        monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        sock.connect(args.endpoint)
        if recv_until(monitor, time.monotonic() + 5) is None:
            fail("the thief's CURVE handshake did not succeed: its key must be valid")
        sock.disable_monitor()
        monitor.close()
        thieves.append(sock)
        return sock

    def thief_traffic():
        """Every message any thief socket got so far, as headers."""
        got = []
        for sock in thieves:
            while sock.poll(0, zmq.POLLIN):
                head, _ = decode(sock.recv_multipart())
                got.append(head)
        return got

    # The victim's session first: a thief whose handshake finished before the
    # victim's would hold the routing id, and the victim's READY would be lost.
    # A HEARTBEAT from the broker proves the victim is registered.
    if victim.next(5000, "HEARTBEAT")[0] is None:
        fail("the victim worker was not registered: no HEARTBEAT from the broker")

    # Phase 1: both connected. The call goes to the victim.
    thief = thief_socket()
    request_id = client.send("echo", {"n": 1})
    head, request = victim.next(5000)
    if head is None:
        fail("the victim worker got no REQUEST for the call")
    ticket = head[2]
    thief.send_multipart([b"", header("REPLY", ticket, 200), msgpack.packb({"forged": 1})])
    status, body = client.wait(request_id, 700)
    if status is not None:
        fail("the client got an answer before the victim replied: %s %r" % (status, body))
    victim.reply(ticket, request)
    status, body = client.wait(request_id, 5000)
    if status != 200 or body != {"n": 1}:
        fail("the client got %s %r, expected the victim's 200 {'n': 1}" % (status, body))
    note("phase 1: the thief's REPLY for ticket %d was not delivered; the victim's was"
         % ticket)

    # Phase 2: the victim's connection closes while it holds a call; a new
    # connection of the thief's takes the routing id and answers for it.
    request_id = client.send("echo", {"n": 2}, timeout_ms=4000)
    head, _ = victim.next(5000)
    if head is None:
        fail("the victim worker got no REQUEST for the second call")
    ticket = head[2]
    victim.sock.close(linger=0)
    late = thief_socket()
    late.send_multipart([b"", header("REPLY", ticket, 200), msgpack.packb({"forged": 2})])
    status, body = client.wait(request_id, 6000)
    if status == 200 or (isinstance(body, dict) and "forged" in body):
        fail("the thief's REPLY reached the client: %s %r" % (status, body))
    note("phase 2: the call held by the closed victim ended %s %r, not the thief's reply"
         % (status, body))
    # Later calls of echo must not go to any thief.
    status, body = client.call("echo", {"n": 3}, timeout_ms=1500)
    got = thief_traffic()
    requests = [h for h in got if h and h[1] == "REQUEST"]
    if requests:
        fail("a thief received REQUESTs: %r" % requests)
    if status == 200:
        fail("echo answered 200 with no echo worker left: %r" % (body,))
    note("after the victim left: echo answered %s; thieves received %s"
         % (status, [h[1] if h else h for h in got] or "nothing"))
    ctx.destroy(linger=0)
    return 0


def cmd_client_theft(args):
    """A client with a routing id of its own calls echo and leaves while the
    worker holds the call; a peer with another key takes the routing id. The
    worker's answer must not reach it, and its CALL with the same request id
    must be a call of its own, not the old one's copy."""
    ctx = zmq.Context()
    routing_id = b"\x00client-theft"
    worker = Worker(ctx, args.endpoint, args, "echo", secret=args.victim)
    client_args = argparse.Namespace(**vars(args))
    client_args.secret = args.client
    client = Client(ctx, args.endpoint, client_args, routing_id=routing_id)
    request_id = client.send("echo", {"secret": "for the client only"}, timeout_ms=20000)
    request, body = worker.next(5000)
    if request is None:
        fail("the worker got no REQUEST for the client's call")
    client.sock.close(linger=0)
    thief_args = argparse.Namespace(**vars(args))
    thief_args.secret = args.thief
    # libzmq gives the routing id to a connection that sends while the
    # client's is gone; one that sent while it was still there stays unread
    # for good, so each attempt is a new connection. The first that gets it
    # has its HEARTBEAT answered "not registered".
    deadline = time.monotonic() + 10
    while True:
        thief = Client(ctx, args.endpoint, thief_args, routing_id=routing_id)
        thief.sock.send_multipart([b"", header("HEARTBEAT")])
        frames = recv_until(thief.sock, min(deadline, time.monotonic() + 0.3))
        if frames is not None:
            break
        thief.sock.close(linger=0)
        worker.beat()
        if time.monotonic() > deadline:
            fail("the thief never got the routing id")
    worker.reply(request[2], body)
    status, got = thief.wait(request_id, 1500)
    if status is not None:
        fail("the thief got the client's reply: %r %r" % (status, got))
    thief.next_id = request_id                  # the same request id as the client's
    request_id = thief.send("echo", {"thief": 1}, timeout_ms=5000)
    second, second_body = worker.next(5000)
    if second is None:
        fail("the thief's CALL with the client's request id was taken for the old call")
    worker.reply(second[2], second_body)
    status, got = thief.wait(request_id, 5000)
    if status != 200 or got != {"thief": 1}:
        fail("the thief's own call was answered %r %r" % (status, got))
    note("the client's reply went nowhere; the thief's own call got its own answer")
    ctx.destroy(linger=0)


def cmd_stray(args):
    """Worker A serves echo; worker B (another key, serving another service)
    sends a REPLY carrying A's ticket. The broker must drop B's REPLY (the
    ticket is not B's) and deliver A's."""
    ctx = zmq.Context()
    a = Worker(ctx, args.endpoint, args, "echo", secret=args.worker_a)
    b = Worker(ctx, args.endpoint, args, "other", secret=args.worker_b)
    client = Client(ctx, args.endpoint, argparse.Namespace(
        secret=args.client, server_key=args.server_key))
    request_id = client.send("echo", {"from": "a"})
    head, request = a.next(5000)
    if head is None:
        fail("worker A got no REQUEST")
    ticket = head[2]
    b.reply(ticket, {"from": "b"})
    status, body = client.wait(request_id, 700)
    if status is not None:
        fail("the client got %s %r before A replied: B's REPLY was delivered"
             % (status, body))
    a.reply(ticket, request)
    status, body = client.wait(request_id, 5000)
    if status != 200 or body != {"from": "a"}:
        fail("the client got %s %r, expected A's reply" % (status, body))
    # B is still a worker in good standing: a stray reply is dropped, not punished.
    b.next(300, command="DISCONNECT")
    if any(h and h[1] == "DISCONNECT" for h in b.seen):
        fail("worker B was disconnected for a stray reply: %r" % b.seen)
    note("B's REPLY for A's ticket %d was dropped; A's reply was delivered" % ticket)
    ctx.destroy(linger=0)
    return 0


def cmd_revoke(args):
    """A connected client whose key file is moved out of the keys directory:
    its connection must be closed within --bound-ms, and its reconnects
    refused at the handshake. Prints the time it took."""
    ctx = zmq.Context()
    client = Client(ctx, args.endpoint, args)
    monitor = client.sock.get_monitor_socket(
        zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
        | zmq.EVENT_HANDSHAKE_SUCCEEDED)
    status, body = client.call("echo", {"before": 1})
    if status != 200:
        fail("before the removal: call echo answered %s %r" % (status, body))
    os.rename(args.key_file, args.park)
    removed = time.monotonic()
    cut = None
    refused = None
    deadline = removed + args.bound_ms / 1000
    # A call every 100 ms: "its next call fails" as well as the connection closing.
    last_ok = None
    while time.monotonic() < deadline + 3 and refused is None:
        if cut is None:
            status, _ = client.call("echo", {"after": 1}, timeout_ms=100, wait_ms=100)
            if status == 200:
                last_ok = time.monotonic() - removed
        event = recv_until(monitor, time.monotonic() + 0.05)
        if event is None:
            continue
        event = parse_event(event)
        if event == zmq.EVENT_DISCONNECTED and cut is None:
            cut = time.monotonic() - removed
        elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH and cut is not None:
            refused = time.monotonic() - removed
        elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED and cut is not None:
            fail("the removed key completed a new handshake")
    if cut is None:
        fail("the connection was not closed within %d ms of the removal (+3 s of grace)"
             % args.bound_ms)
    note("connection closed %.0f ms after the key file was removed (last call answered: %s)"
         % (cut * 1000, "never" if last_ok is None else "%.0f ms" % (last_ok * 1000)))
    if cut * 1000 > args.bound_ms:
        fail("the connection was closed after %.0f ms, over the stated %d ms"
             % (cut * 1000, args.bound_ms))
    if refused is None:
        fail("no reconnect of the removed key was refused at the handshake")
    note("reconnect refused at the handshake %.0f ms after the removal" % (refused * 1000))
    status, body = Client(ctx, args.endpoint, args).call("echo", {"fresh": 1},
                                                         timeout_ms=1000, wait_ms=1500)
    if status is not None:
        fail("a fresh connection with the removed key got an answer: %s %r" % (status, body))
    note("a fresh connection with the removed key gets no answer")
    ctx.destroy(linger=0)
    return 0


def parse_event(frames):
    """The event number of a libzmq monitor message."""
    return int.from_bytes(frames[0][:2], "little")


ZMTP10_GREETING = b"\x01\x00"                   # ZMTP 1.0: an empty identity frame
ZMTP30_NULL = (b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL" + b"\x00" * 16
               + b"\x00" + b"\x00" * 31)


def cmd_flood(args):
    """Holds --count raw TCP connections to the endpoint: a quarter send
    random bytes, a quarter a ZMTP 1.0 greeting and junk frames after it, a
    quarter a ZMTP 3.0 greeting asking for the NULL mechanism, a quarter
    say nothing. A connection the broker closes is opened again, until
    SIGTERM or --seconds. Prints "flood: up" once all are open."""
    host, port = args.endpoint[len("tcp://"):].rsplit(":", 1)
    stop = threading.Event()
    stats = {"opened": 0, "closed_by_peer": 0}
    lock = threading.Lock()
    rng = random.Random(5)

    def payload(kind):
        if kind == 0:
            return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
        if kind == 1:
            return ZMTP10_GREETING + b"\x05\x00junk" * rng.randint(1, 20)
        if kind == 2:
            return ZMTP30_NULL
        return b""

    def one(kind, up):
        first = True
        while not stop.is_set():
            try:
                conn = socket.create_connection((host, int(port)), timeout=2)
            except OSError:
                stop.wait(0.05)
                continue
            with lock:
                stats["opened"] += 1
            if first:
                up.release()
                first = False
            try:
                data = payload(kind)
                if data:
                    conn.sendall(data)
                conn.settimeout(0.2)
                while not stop.is_set():
                    try:
                        if conn.recv(4096) == b"":
                            with lock:
                                stats["closed_by_peer"] += 1
                            break
                    except socket.timeout:
                        if kind == 0:
                            conn.sendall(payload(0))
            except OSError:
                with lock:
                    stats["closed_by_peer"] += 1
            finally:
                conn.close()

    up = threading.Semaphore(0)
    threads = [threading.Thread(target=one, args=(i % 4, up), daemon=True)
               for i in range(args.count)]
    for thread in threads:
        thread.start()
    for _ in threads:
        if not up.acquire(timeout=10):
            fail("could not open %d connections to %s" % (args.count, args.endpoint))
    print("flood: up", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait(args.seconds)
    stop.set()
    for thread in threads:
        thread.join(3)
    note("flood: %d connections opened, %d closed by the broker"
         % (stats["opened"], stats["closed_by_peer"]))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("status")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--timeout-ms", type=int, default=3000)
    add_curve_options(p)
    p.set_defaults(run=cmd_status)

    p = sub.add_parser("call")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--service", default="echo")
    p.add_argument("--body", default='{"x":1}')
    p.add_argument("--timeout-ms", type=int, default=2000)
    p.add_argument("--wait-ms", type=int, default=None)
    p.add_argument("--metadata", action="append", default=[])
    add_curve_options(p)
    p.set_defaults(run=cmd_call)

    p = sub.add_parser("push-plain")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--pipeline", required=True)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--linger-ms", type=int, default=5000)
    p.add_argument("--tag", help="adds \"from\": TAG to every message")
    add_curve_options(p)
    p.set_defaults(run=cmd_push_plain)

    p = sub.add_parser("get")
    p.add_argument("file")
    p.add_argument("expr")
    p.set_defaults(run=cmd_get)

    p = sub.add_parser("metadata")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--claim", required=True, help="the key claimed as X-User-Id")
    add_curve_options(p, required=True)
    p.set_defaults(run=cmd_metadata)

    p = sub.add_parser("theft")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--server-key", required=True)
    p.add_argument("--victim", required=True)
    p.add_argument("--thief", required=True)
    p.add_argument("--client", required=True)
    p.set_defaults(run=cmd_theft)

    p = sub.add_parser("client-theft")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--server-key", required=True)
    p.add_argument("--victim", required=True)
    p.add_argument("--thief", required=True)
    p.add_argument("--client", required=True)
    p.set_defaults(run=cmd_client_theft)

    p = sub.add_parser("stray")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--server-key", required=True)
    p.add_argument("--worker-a", required=True)
    p.add_argument("--worker-b", required=True)
    p.add_argument("--client", required=True)
    p.set_defaults(run=cmd_stray)

    p = sub.add_parser("revoke")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--key-file", required=True, help="the public file to remove")
    p.add_argument("--park", required=True, help="where to move it")
    p.add_argument("--bound-ms", type=int, default=2000)
    add_curve_options(p, required=True)
    p.set_defaults(run=cmd_revoke)

    p = sub.add_parser("flood")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--seconds", type=float, default=60)
    p.set_defaults(run=cmd_flood)

    args = parser.parse_args()
    sys.exit(args.run(args))


if __name__ == "__main__":
    main()
