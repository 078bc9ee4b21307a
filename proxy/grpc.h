/* gRPC helpers for the connection manager and router: recognising gRPC
 * requests, Envoy's HTTP → gRPC status mapping for local replies, the
 * grpc-message percent-encoding and the grpc-timeout header. */
#ifndef PF_GRPC_H
#define PF_GRPC_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/stream.h"

enum {
    GRPC_OK = 0, GRPC_UNKNOWN = 2, GRPC_DEADLINE_EXCEEDED = 4, GRPC_PERMISSION_DENIED = 7,
    GRPC_UNIMPLEMENTED = 12, GRPC_INTERNAL = 13, GRPC_UNAVAILABLE = 14, GRPC_UNAUTHENTICATED = 16,
};

/* content-type application/grpc, application/grpc+proto, ... */
bool grpc_is_request(const pf_stream *s);
/* The grpc-status pilotfish answers for a local reply (Envoy's
 * httpToGrpcStatus; a route timeout is DEADLINE_EXCEEDED). */
int grpc_status_for_local_reply(int http_status, uint32_t response_flags);
/* Percent-encodes a grpc-message (gRPC spec) into the arena. */
pf_str grpc_encode_message(pf_arena *a, const char *msg, size_t n);
/* Parses grpc-timeout ("100m", "5S", ...): returns ms (rounded up, at
 * least 1), or 0 when absent or malformed. */
uint64_t grpc_timeout_ms(const pf_stream *s);

#endif
