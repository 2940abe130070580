// minimal-nio-server SOCKET-PATH [EVENT-LOOPS]
//
// NIO's standard HTTP/1.1 server pipeline (`configureHTTPServerPipeline`) and one handler that
// answers every request with the same 64-byte body and a Content-Length, on a Unix socket.
// One event loop unless told otherwise. Runs until killed.

import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

final class FixedBodyHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// 63 × "x" and a newline, like the file nginx serves in the same benchmark.
    static let body = ByteBuffer(string: String(repeating: "x", count: 63) + "\n")

    private var keepAlive = true

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            keepAlive = head.isKeepAlive
        case .body:
            break
        case .end:
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(Self.body.readableBytes))
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(Self.body))), promise: nil)
            if keepAlive {
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            } else {
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                    loopBound.value.close(promise: nil)
                }
            }
        }
    }
}

let arguments = CommandLine.arguments
guard arguments.count >= 2, arguments.count <= 3, let loops = Int(arguments.count == 3 ? arguments[2] : "1"), loops > 0
else {
    print("usage: minimal-nio-server SOCKET-PATH [EVENT-LOOPS]")
    exit(64)
}
let group = MultiThreadedEventLoopGroup(numberOfThreads: loops)
let channel = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline()
            try channel.pipeline.syncOperations.addHandler(FixedBodyHandler())
        }
    }
    .bind(unixDomainSocketPath: arguments[1], cleanupExistingSocketFile: true)
    .wait()
try channel.closeFuture.wait()
