import NIOCore
import NIOHTTP1
import NIOPosix

/// One connection to the emulator: collects a request, asks the emulator what to do, does it.
final class EmulatorHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let emulator: TokenEndpointEmulator
    private var head: HTTPRequestHead?
    private var body = ""
    private var rawBody: [UInt8] = []

    init(emulator: TokenEndpointEmulator) {
        self.emulator = emulator
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = ""
            rawBody = []
        case .body(let buffer):
            rawBody += buffer.readableBytesView
        case .end:
            guard let head else { return }
            self.head = nil
            if WebhooksAPIStandIn.handles(path: head.uri.prefix { $0 != "?" }) {
                let decision = emulator.webhooksAPI.decide(
                    method: head.method.rawValue, target: head.uri, headers: head.headers.map { ($0.name, $0.value) },
                    body: rawBody, issued: emulator.issuedTokens)
                if case .hang = decision { return }  // not a token request: not counted as one in flight
                return act(decision, context: context, head: head)
            }
            body = String(decoding: rawBody, as: UTF8.self)
            emulator.requestStarted()
            let decision = emulator.decide(
                method: head.method.rawValue, authorization: head.headers.first(name: "Authorization"),
                contentType: head.headers.first(name: "Content-Type"), body: body)
            act(decision, context: context, head: head)
        }
    }

    private func act(_ decision: TokenEndpointEmulator.Decision, context: ChannelHandlerContext, head: HTTPRequestHead)
    {
        let emulator = self.emulator
        switch decision {
        case .answer(let status, let headers, let body):
            writeHead(context: context, status: status, headers: headers, contentLength: body.utf8.count)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in emulator.requestFinished() }
        case .hang:
            // Never answer; the request counts as in flight until the peer gives up.
            context.channel.closeFuture.whenComplete { _ in emulator.requestFinished() }
        case .reset:
            resetConnection(context: context)
            emulator.requestFinished()
        case .resetMidResponse(let body):
            writeHead(context: context, status: 200, headers: [], contentLength: body.utf8.count)
            let half = String(body.prefix(body.count / 2))
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: half))))).whenComplete { _ in
                let (handler, context) = loopBound.value
                handler.resetConnection(context: context)
                emulator.requestFinished()
            }
        case .delayed(let status, let headers, let body, let delay):
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .nanoseconds(Self.nanoseconds(delay))) {
                let (handler, context) = loopBound.value
                handler.act(.answer(status: status, headers: headers, body: body), context: context, head: head)
            }
        case .stream(let status, let bytes):
            writeHead(
                context: context, status: status, headers: [.init("Content-Type", "application/octet-stream")],
                contentLength: bytes)
            stream(remaining: bytes, context: context)
        case .drip(let body, let interval):
            writeHead(context: context, status: 200, headers: [], contentLength: body.utf8.count)
            context.flush()
            drip(Array(body.utf8)[...], interval: interval, context: context)
        }
    }

    /// Writes the next 64 KiB once the previous ones have gone out, so the peer's pace sets ours.
    private func stream(remaining: Int, context: ChannelHandlerContext) {
        guard remaining > 0 else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        let size = min(remaining, 64 * 1024)
        let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: size)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(chunk)))).whenSuccess {
            let (handler, context) = loopBound.value
            handler.stream(remaining: remaining - size, context: context)
        }
    }

    private func drip(_ remaining: ArraySlice<UInt8>, interval: Duration, context: ChannelHandlerContext) {
        guard let byte = remaining.first else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            emulator.requestFinished()
            return
        }
        guard context.channel.isActive else {
            emulator.requestFinished()
            return
        }
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: [byte])))), promise: nil)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .nanoseconds(Self.nanoseconds(interval))) {
            let (handler, context) = loopBound.value
            handler.drip(remaining.dropFirst(), interval: interval, context: context)
        }
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        Int64(duration.components.seconds) * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }

    private func writeHead(
        context: ChannelHandlerContext, status: Int, headers extra: [TokenEndpointEmulator.Header], contentLength: Int
    ) {
        var headers = HTTPHeaders()
        if !extra.contains(where: { $0.name.lowercased() == "content-type" }) {
            headers.add(name: "Content-Type", value: "application/json")
        }
        for header in extra { headers.add(name: header.name, value: header.value) }
        headers.add(name: "Content-Length", value: String(contentLength))
        headers.add(name: "Cache-Control", value: "no-store")
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
    }

    /// SO_LINGER with a zero timeout turns close() into a TCP reset.
    private func resetConnection(context: ChannelHandlerContext) {
        let channel = context.channel
        guard let provider = channel as? any SocketOptionProvider else {
            channel.close(promise: nil)
            return
        }
        provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in
            channel.close(promise: nil)
        }
    }
}
