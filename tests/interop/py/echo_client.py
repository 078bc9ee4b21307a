"""grpcio interop client for pilotfish.interop.Echo: same flags, scenarios and output as
tests/interop/go/client (scenario mode only). Run through build-interop/bin/py-client.

  py-client -addr 127.0.0.1:10000 [-scenario all]
  py-client -addr 127.0.0.1:10443 -tls -ca ca.crt -server-name localhost
"""
import argparse
import sys
import time

import grpc

import echo_grpc
import echo_pb2
import health_pb2

ALL = ["unary", "server_stream", "client_stream", "bidi", "error_status", "stream_error",
       "deadline", "large_payload", "metadata", "health"]
ERR_MESSAGE = "pilotfish interop: 100% failed, ünïcode ✓"
CODES = {c.value[0]: c for c in grpc.StatusCode}


class Fail(Exception):
    pass


def check(ok, what):
    if not ok:
        raise Fail(what)


def check_payload(p, n):
    check(len(p) == n, "payload: got %d bytes, want %d" % (len(p), n))
    check(p == bytes(i % 251 for i in range(n)), "payload: wrong content")


def want_status(call, code, msg=None):
    try:
        r = call()
    except grpc.RpcError as e:
        check(e.code() == code, "want status %s, got %s (%r)" % (code, e.code(), e.details()))
        if msg is not None:
            check(e.details() == msg, "status message: got %r, want %r" % (e.details(), msg))
        return None
    raise Fail("want status %s, got OK" % code)


def run(a, ch, name):
    stub = echo_grpc.EchoStub(ch)
    n, t = a.n, a.timeout
    if name == "unary":
        r = stub.Unary(echo_pb2.EchoRequest(message="hello", payload_size=100), timeout=t)
        check(r.message == "hello", "message: %r" % r.message)
        check_payload(r.payload, 100)
    elif name == "server_stream":
        i = 0
        for r in stub.ServerStream(echo_pb2.EchoRequest(message="ss", response_count=n, payload_size=10), timeout=t):
            check(r.index == i and r.message == "ss", "reply %d: index %d" % (i, r.index))
            check_payload(r.payload, 10)
            i += 1
        check(i == n, "got %d replies, want %d" % (i, n))
    elif name == "client_stream":
        msgs = ["m%d" % i for i in range(n)]
        r = stub.ClientStream(iter(echo_pb2.EchoRequest(message=m, payload_size=7) for m in msgs), timeout=t)
        check(r.message == ",".join(msgs) and r.index == n, "reply: index %d message %r" % (r.index, r.message))
        check_payload(r.payload, 7)
    elif name == "bidi":
        # Ping-pong: request i+1 is produced only after reply i arrived.
        import queue
        q = queue.Queue()

        def reqs():
            for i in range(n):
                yield echo_pb2.EchoRequest(message="b%d" % i, payload_size=i)
                check(q.get(timeout=t) == i, "out of order")

        call = stub.BidiStream(reqs(), timeout=t)
        i = 0
        for r in call:
            check(r.message == "b%d" % i and r.index == i, "reply %d: index %d message %r" % (i, r.index, r.message))
            check_payload(r.payload, i)
            q.put(i)
            i += 1
        check(i == n, "got %d replies, want %d" % (i, n))
    elif name == "error_status":
        code = CODES[a.status_code]
        want_status(lambda: stub.Unary(echo_pb2.EchoRequest(message=ERR_MESSAGE, status_code=a.status_code), timeout=t),
                    code, ERR_MESSAGE)
    elif name == "stream_error":
        got = []

        def consume():
            for r in stub.ServerStream(echo_pb2.EchoRequest(message=ERR_MESSAGE, response_count=3,
                                                            status_code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]), timeout=t):
                got.append(r)
        want_status(consume, grpc.StatusCode.RESOURCE_EXHAUSTED, ERR_MESSAGE)
        check(len(got) == 3, "got %d replies before the error, want 3" % len(got))
    elif name == "deadline":
        t0 = time.monotonic()
        want_status(lambda: stub.Unary(echo_pb2.EchoRequest(message="slow", delay_ms=5000), timeout=0.3),
                    grpc.StatusCode.DEADLINE_EXCEEDED)
        d = time.monotonic() - t0
        check(d < 3, "DEADLINE_EXCEEDED only after %.1fs" % d)
    elif name == "large_payload":
        big = "x" * (1 << 20)
        r = stub.Unary(echo_pb2.EchoRequest(message=big, payload_size=1 << 20), timeout=t)
        check(r.message == big, "1 MiB message came back as %d bytes" % len(r.message))
        check_payload(r.payload, 1 << 20)
    elif name == "metadata":
        binv = bytes([0, 1, 2, 0xFE, 0xFF])
        md = [("x-echo-header-a", "va"), ("x-echo-header-a", "va2"), ("x-echo-trailer-b", "vb"),
              ("x-echo-trailer-c-bin", binv)]
        for rpc in ("unary", "server_stream"):
            if rpc == "unary":
                _, call = stub.Unary.with_call(echo_pb2.EchoRequest(message="md"), metadata=md, timeout=t)
            else:
                call = stub.ServerStream(echo_pb2.EchoRequest(message="md", response_count=2), metadata=md, timeout=t)
                for _ in call:
                    pass
            hdr, trl = list(call.initial_metadata()), list(call.trailing_metadata())
            hv = [v for k, v in hdr if k == "x-echo-header-a"]
            check(hv == ["va", "va2"], "%s: header x-echo-header-a = %r" % (rpc, hv))
            check(any(k == "x-echo-server" for k, _ in hdr), "%s: no x-echo-server header" % rpc)
            check([v for k, v in trl if k == "x-echo-trailer-b"] == ["vb"], "%s: trailers %r" % (rpc, trl))
            check([v for k, v in trl if k == "x-echo-trailer-c-bin"] == [binv], "%s: trailers %r" % (rpc, trl))
            check(not any(k == "x-echo-header-a" for k, _ in trl) and not any(k == "x-echo-trailer-b" for k, _ in hdr),
                  "%s: header/trailer mixed up: hdr=%r trl=%r" % (rpc, hdr, trl))
    elif name == "health":
        h = echo_grpc.HealthStub(ch)
        for svc in ("", "pilotfish.interop.Echo"):
            r = h.Check(health_pb2.HealthCheckRequest(service=svc), timeout=t)
            check(r.status == health_pb2.HealthCheckResponse.SERVING, "Check(%r): %s" % (svc, r.status))
        want_status(lambda: h.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=t),
                    grpc.StatusCode.NOT_FOUND)
    else:
        raise Fail("unknown scenario %r" % name)


def main():
    ap = argparse.ArgumentParser(prefix_chars="-")
    ap.add_argument("-addr", default="127.0.0.1:50051")
    ap.add_argument("-tls", action="store_true")
    ap.add_argument("-ca")
    ap.add_argument("-server-name")
    ap.add_argument("-tls-cert")
    ap.add_argument("-tls-key")
    ap.add_argument("-authority")
    ap.add_argument("-scenario", default="all")
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("-status-code", type=int, default=9)
    ap.add_argument("-timeout", type=float, default=10.0, help="seconds")
    a = ap.parse_args()
    opts = [("grpc.max_receive_message_length", 16 << 20), ("grpc.max_send_message_length", 16 << 20)]
    if a.authority:
        opts.append(("grpc.default_authority", a.authority))
    if a.tls:
        rd = lambda f: open(f, "rb").read() if f else None
        creds = grpc.ssl_channel_credentials(rd(a.ca), rd(a.tls_key), rd(a.tls_cert))
        if a.server_name:
            opts.append(("grpc.ssl_target_name_override", a.server_name))
        ch = grpc.secure_channel(a.addr, creds, options=opts)
    else:
        ch = grpc.insecure_channel(a.addr, options=opts)
    names = ALL if a.scenario == "all" else a.scenario.split(",")
    rc = 0
    try:
        grpc.channel_ready_future(ch).result(timeout=a.timeout)
    except grpc.FutureTimeoutError:
        for n in names:
            print("RESULT %s FAIL connect %s: not ready after %ss" % (n, a.addr, a.timeout), flush=True)
        return 1
    for n in names:
        t0 = time.monotonic()
        try:
            run(a, ch, n)
            print("RESULT %s PASS %.1fms" % (n, (time.monotonic() - t0) * 1000), flush=True)
        except (Fail, grpc.RpcError, Exception) as e:  # noqa: B014 - report anything as FAIL
            msg = str(e) if isinstance(e, Fail) else "%s: %s" % (type(e).__name__, e)
            print("RESULT %s FAIL %s" % (n, msg.replace("\n", " ")), flush=True)
            rc = 1
    ch.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())
