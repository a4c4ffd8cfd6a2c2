"""A gRPC echo service on grpcio (the reference C-core implementation), for the waypoint example.

Service weft.echo.Echo, messages raw bytes (generic handlers, no protobuf code generation):
- Unary: answers one JSON message naming the pod and version that answered and the request
  metadata it received; the trailing metadata carries x-echo-pod. Metadata `x-fail: CODE`
  (a grpc.StatusCode name, e.g. NOT_FOUND) makes it fail with that status.
- Count: server streaming; the request is a number N, the answer N messages 0..N-1.
- Chat: bidirectional streaming; every message comes back upper-cased, one by one.
Listens on PORT (default 50051), plaintext HTTP/2 (the mesh adds mutual TLS). Stops on SIGTERM.
"""
import json
import os
import signal
import sys
import threading
from concurrent import futures

import grpc

POD = os.environ.get("POD_NAME", "local")
VERSION = os.environ.get("VERSION", "")
PORT = int(os.environ.get("PORT", "50051"))


def unary(request, context):
    metadata = {k: v for k, v in context.invocation_metadata() if not k.endswith("-bin")}
    context.set_trailing_metadata((("x-echo-pod", POD),))
    fail = metadata.get("x-fail")
    if fail:
        context.abort(grpc.StatusCode[fail], f"failed as asked by {POD}")
    body = {"pod": POD, "version": VERSION, "method": "Unary", "metadata": metadata, "bytes": len(request)}
    return json.dumps(body).encode()


def count(request, context):
    context.set_trailing_metadata((("x-echo-pod", POD),))
    for i in range(int(request.decode() or "3")):
        yield json.dumps({"pod": POD, "version": VERSION, "i": i}).encode()


def chat(request_iterator, context):
    context.set_trailing_metadata((("x-echo-pod", POD),))
    for message in request_iterator:
        yield message.upper()


def main():
    handler = grpc.method_handlers_generic_handler(
        "weft.echo.Echo",
        {
            # No serializers: the messages are the raw bytes.
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Count": grpc.unary_stream_rpc_method_handler(count),
            "Chat": grpc.stream_stream_rpc_method_handler(chat),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), handlers=(handler,))
    server.add_insecure_port(f"0.0.0.0:{PORT}")
    server.start()
    print(f"grpc echo ({POD}) listening on {PORT}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    server.stop(grace=1).wait()
    sys.exit(0)


if __name__ == "__main__":
    main()
