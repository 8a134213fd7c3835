"""A tiny gRPC server and client (grpcio, no generated code: bytes in, bytes out).
`python3 grpc_demo.py serve PORT` serves until killed; `python3 grpc_demo.py call PORT`
makes, on one channel (one HTTP/2 connection): an OK unary call, 12 logins with
Basic credentials in metadata answered UNAUTHENTICATED (one user, a brute force),
a lookup answered NOT_FOUND and a server-streaming call of five messages."""
import base64
import sys
import time
from concurrent import futures

import grpc

ident = lambda b: b


def say(request, context):
    return b"hello " + request


def login(request, context):
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad credentials")


def get_item(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, "no such item")


def count(request, context):
    for i in range(5):
        yield b"tick %d" % i


def serve(port):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler("demo.Echo", {
            "Say": grpc.unary_unary_rpc_method_handler(say, ident, ident),
            "Count": grpc.unary_stream_rpc_method_handler(count, ident, ident),
        }),
        grpc.method_handlers_generic_handler("auth.Auth", {
            "Login": grpc.unary_unary_rpc_method_handler(login, ident, ident),
        }),
        grpc.method_handlers_generic_handler("demo.Store", {
            "GetItem": grpc.unary_unary_rpc_method_handler(get_item, ident, ident),
        }),
    ))
    server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    server.wait_for_termination()


def call(port):
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        say_ = ch.unary_unary("/demo.Echo/Say", ident, ident)
        print(say_(b"world"))
        login_ = ch.unary_unary("/auth.Auth/Login", ident, ident)
        for i in range(12):
            cred = base64.b64encode(b"alice:guess%d" % i).decode()
            try:
                login_(b"\x0a\x05alice", metadata=(("authorization", "Basic " + cred),))
            except grpc.RpcError as e:
                print(e.code())
            time.sleep(0.05)
        try:
            ch.unary_unary("/demo.Store/GetItem", ident, ident)(b"\x08\x2a")
        except grpc.RpcError as e:
            print(e.code())
        print(list(ch.unary_stream("/demo.Echo/Count", ident, ident)(b"")))


if __name__ == "__main__":
    {"serve": serve, "call": call}[sys.argv[1]](int(sys.argv[2]))
