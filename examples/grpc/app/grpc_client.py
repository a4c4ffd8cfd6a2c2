"""A grpcio client of weft.echo.Echo (grpc_echo.py) that prints what it got as one JSON line.

  python3 grpc_client.py unary HOST:PORT [--count N] [--metadata k=v ...]
      N unary calls on one channel: [{code, version, pod, metadata, trailers}, ...]
  python3 grpc_client.py count HOST:PORT N      server streaming: {code, messages, trailers}
  python3 grpc_client.py chat HOST:PORT WORD... bidirectional, one message in flight at a time
      (the next is sent only after the answer to the previous one came back): {code, answers}
Every call has a 5 s deadline; a failed call is reported with its status code and details,
never raised. The channel ignores proxy settings of the environment (the mesh is the proxy).
"""
import json
import queue
import sys

import grpc

OPTIONS = (("grpc.enable_http_proxy", 0),)
DEADLINE_S = 5


def parse_metadata(args):
    out = []
    while "--metadata" in args:
        i = args.index("--metadata")
        key, _, value = args[i + 1].partition("=")
        out.append((key, value))
        del args[i : i + 2]
    return tuple(out)


def status_of(err):
    return {"code": err.code().name, "details": err.details(), "trailers": dict(err.trailing_metadata() or ())}


def unary(channel, args):
    count = 1
    if "--count" in args:
        i = args.index("--count")
        count = int(args[i + 1])
        del args[i : i + 2]
    metadata = parse_metadata(args)
    call = channel.unary_unary("/weft.echo.Echo/Unary")
    out = []
    for _ in range(count):
        try:
            answer, state = call.with_call(b"ping", timeout=DEADLINE_S, metadata=metadata)
            body = json.loads(answer)
            out.append({"code": state.code().name, "version": body["version"], "pod": body["pod"], "metadata": body["metadata"], "trailers": dict(state.trailing_metadata())})
        except grpc.RpcError as err:
            out.append(status_of(err))
    return out


def count(channel, args):
    call = channel.unary_stream("/weft.echo.Echo/Count")
    stream = call(args[0].encode(), timeout=DEADLINE_S)
    messages = []
    try:
        for m in stream:
            messages.append(json.loads(m))
        return {"code": stream.code().name, "messages": messages, "trailers": dict(stream.trailing_metadata())}
    except grpc.RpcError as err:
        return {**status_of(err), "messages": messages}


def chat(channel, words):
    outgoing = queue.Queue()
    done = object()

    def requests():
        while True:
            m = outgoing.get()
            if m is done:
                return
            yield m

    call = channel.stream_stream("/weft.echo.Echo/Chat")
    stream = call(requests(), timeout=DEADLINE_S)
    answers = []
    try:
        for w in words:
            outgoing.put(w.encode())
            # The answer to this message before the next one is sent: streaming, not buffering.
            answers.append(next(stream).decode())
        outgoing.put(done)
        for rest in stream:
            answers.append(rest.decode())
        return {"code": stream.code().name, "answers": answers, "trailers": dict(stream.trailing_metadata())}
    except grpc.RpcError as err:
        outgoing.put(done)
        return {**status_of(err), "answers": answers}


def main():
    command, target, *args = sys.argv[1:]
    with grpc.insecure_channel(target, options=OPTIONS) as channel:
        result = {"unary": unary, "count": count, "chat": chat}[command](channel, args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
