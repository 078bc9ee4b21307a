"""grpcio echo server for pilotfish.interop.Echo (+ grpc.health.v1.Health Check), with the
same semantics as tests/interop/go/server. Run through build-interop/bin/py-server
(it sets PYTHONPATH to the generated *_pb2 modules; needs /usr/bin/python3).

  py-server -addr 127.0.0.1:50071 [-tls-cert srv.crt -tls-key srv.key [-client-ca ca.crt]]
"""
import argparse
import signal
import sys
import threading
from concurrent import futures

import grpc

import echo_grpc
import echo_pb2

NAME = "py"
CODES = {c.value[0]: c for c in grpc.StatusCode}


def payload(n):
    return bytes(i % 251 for i in range(n)) if n > 0 else b""


def echo_metadata(context):
    hdr, trl = [("x-echo-server", NAME)], []
    for k, v in context.invocation_metadata():
        if k.startswith("x-echo-header-"):
            hdr.append((k, v))
        elif k.startswith("x-echo-trailer-"):
            trl.append((k, v))
    return hdr, trl


def sleep(context, ms):
    """Waits ms, or until the RPC is cancelled / past its deadline; False then."""
    if ms <= 0:
        return True
    ev = threading.Event()
    if not context.add_callback(ev.set):
        return False
    ev.wait(ms / 1000.0)
    return context.is_active()


def fail(context, req):
    if req.status_code:
        context.abort(CODES.get(req.status_code, grpc.StatusCode.UNKNOWN), req.message)


def start(context):
    hdr, trl = echo_metadata(context)
    context.send_initial_metadata(hdr)
    context.set_trailing_metadata(trl)


class Echo:
    def Unary(self, req, context):
        start(context)
        if not sleep(context, req.delay_ms):
            context.abort(grpc.StatusCode.CANCELLED, "cancelled")
        fail(context, req)
        return echo_pb2.EchoReply(message=req.message, payload=payload(req.payload_size))

    def ServerStream(self, req, context):
        start(context)
        p = payload(req.payload_size)
        for i in range(max(req.response_count, 1)):
            if not sleep(context, req.delay_ms):
                return
            yield echo_pb2.EchoReply(message=req.message, index=i, payload=p)
        fail(context, req)

    def ClientStream(self, reqs, context):
        start(context)
        msgs, last = [], None
        for req in reqs:
            msgs.append(req.message)
            last = req
            if not sleep(context, req.delay_ms):
                context.abort(grpc.StatusCode.CANCELLED, "cancelled")
            fail(context, req)
        return echo_pb2.EchoReply(message=",".join(msgs), index=len(msgs),
                                  payload=payload(last.payload_size) if last else b"")

    def BidiStream(self, reqs, context):
        start(context)
        for i, req in enumerate(reqs):
            if not sleep(context, req.delay_ms):
                return
            fail(context, req)
            yield echo_pb2.EchoReply(message=req.message, index=i, payload=payload(req.payload_size))


def main():
    global NAME
    ap = argparse.ArgumentParser(prefix_chars="-")
    ap.add_argument("-addr", default="127.0.0.1:50071")
    ap.add_argument("-tls-cert")
    ap.add_argument("-tls-key")
    ap.add_argument("-client-ca")
    ap.add_argument("-name", default=NAME)
    ap.add_argument("-workers", type=int, default=64)
    a = ap.parse_args()
    NAME = a.name
    opts = [("grpc.max_receive_message_length", 16 << 20), ("grpc.max_send_message_length", 16 << 20)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=a.workers), options=opts)
    echo_grpc.add_echo_servicer(Echo(), server)
    echo_grpc.add_health_servicer(echo_grpc.HealthServicer(("", "pilotfish.interop.Echo")), server)
    if a.tls_cert:
        key, cert = open(a.tls_key, "rb").read(), open(a.tls_cert, "rb").read()
        ca = open(a.client_ca, "rb").read() if a.client_ca else None
        creds = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                            require_client_auth=ca is not None)
        port = server.add_secure_port(a.addr, creds)
    else:
        port = server.add_insecure_port(a.addr)
    if not port:
        sys.exit("py-server: cannot listen on " + a.addr)
    server.start()
    print("py-server %s: gRPC %s listening on %s" % (NAME, "tls" if a.tls_cert else "h2c", a.addr),
          file=sys.stderr, flush=True)
    done = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: done.set())
    done.wait()
    server.stop(2).wait()


if __name__ == "__main__":
    main()
