"""Hand-written gRPC stubs for pilotfish.interop.Echo and grpc.health.v1.Health.

Debian 12 has no python3-grpcio-tools, so only the messages are generated
(protoc --python_out, by tests/interop/build.sh into build-interop/py); the service
glue below is what grpc_tools would generate, written with grpc.unary_unary & co.
"""
import grpc

import echo_pb2
import health_pb2

_ECHO = "/pilotfish.interop.Echo/"
_HEALTH = "/grpc.health.v1.Health/"


class EchoStub:
    def __init__(self, channel):
        ser, de = echo_pb2.EchoRequest.SerializeToString, echo_pb2.EchoReply.FromString
        self.Unary = channel.unary_unary(_ECHO + "Unary", ser, de)
        self.ServerStream = channel.unary_stream(_ECHO + "ServerStream", ser, de)
        self.ClientStream = channel.stream_unary(_ECHO + "ClientStream", ser, de)
        self.BidiStream = channel.stream_stream(_ECHO + "BidiStream", ser, de)


def add_echo_servicer(servicer, server):
    de, ser = echo_pb2.EchoRequest.FromString, echo_pb2.EchoReply.SerializeToString
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(servicer.Unary, de, ser),
        "ServerStream": grpc.unary_stream_rpc_method_handler(servicer.ServerStream, de, ser),
        "ClientStream": grpc.stream_unary_rpc_method_handler(servicer.ClientStream, de, ser),
        "BidiStream": grpc.stream_stream_rpc_method_handler(servicer.BidiStream, de, ser),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("pilotfish.interop.Echo", handlers),))


class HealthStub:
    def __init__(self, channel):
        ser = health_pb2.HealthCheckRequest.SerializeToString
        de = health_pb2.HealthCheckResponse.FromString
        self.Check = channel.unary_unary(_HEALTH + "Check", ser, de)
        self.Watch = channel.unary_stream(_HEALTH + "Watch", ser, de)


class HealthServicer:
    """Check only (Watch answers UNIMPLEMENTED); every registered service is SERVING."""

    def __init__(self, services=("",)):
        self.services = set(services)

    def Check(self, request, context):
        if request.service not in self.services:
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


def add_health_servicer(servicer, server):
    handlers = {
        "Check": grpc.unary_unary_rpc_method_handler(
            servicer.Check, health_pb2.HealthCheckRequest.FromString,
            health_pb2.HealthCheckResponse.SerializeToString),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("grpc.health.v1.Health", handlers),))
