#!/usr/bin/env python3
"""The interop matrix through pilotfish: tests/interop/run_matrix.sh with
PILOTFISH set renders pilotfish configs for an h2c listener and a TLS 1.3
(ALPN h2) listener and runs every client against the Go and Python echo
servers through each:

* gRPC clients: Go (grpc-go), Java (grpc-java/Netty), Python (grpcio);
* HTTP/2 clients: Go net/http over x/net/http2 (GET; streamed POST with
  request trailers), Java java.net.http (TLS).

The `deadline` scenario is left out here: against the Python server the
client's deadline, pilotfish's grpc-timeout-bounded route timeout and the
server's own deadline fire at the same millisecond, so which error the client
reports is a race.  test_grpc.py checks deadlines through pilotfish against
the Go server, where the proxy's answer is deterministic.
"""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pftest  # noqa: E402
from test_upstream_h2 import interop_bin  # noqa: E402

GRPC_SCENARIOS = ("unary,server_stream,client_stream,bidi,error_status,stream_error,"
                  "large_payload,metadata,health")


class InteropMatrixTest(unittest.TestCase):
    def run_matrix(self, clients, scenarios):
        env = dict(os.environ, PILOTFISH=pftest.BINARY, NO_BUILD="1", CLIENTS=clients,
                   SCENARIOS=scenarios,
                   BUILD_DIR=os.path.dirname(os.path.abspath(interop_bin())))
        p = subprocess.run([os.path.join(pftest.SOURCE_DIR, "tests", "interop", "run_matrix.sh")],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=300 * pftest.TF, env=env)
        out = p.stdout.decode("utf-8", "replace")
        failed = [line for line in out.splitlines() if " FAIL " in line]
        self.assertEqual(p.returncode, 0, "\n".join(failed) or out[-3000:])
        self.assertRegex(out, r"interop: [1-9]\d* passed, 0 failed")

    def test_grpc_clients_h2c_and_tls(self):
        self.run_matrix("go java py", GRPC_SCENARIOS)

    def test_http2_clients_h2c_and_tls(self):
        # go-h2's streamed POST with request trailers caught nghttp2 sending
        # the trailers' HEADERS before the queued DATA (an empty body upstream).
        self.run_matrix("go-h2 java-h2", "all")


if __name__ == "__main__":
    pftest.main()
