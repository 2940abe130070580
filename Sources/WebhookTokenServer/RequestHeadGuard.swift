import NIOCore
import NIOHTTP1
import WebhookTokenProtocol

/// Guards the raw bytes of a connection before HTTP parsing, so that a slow, huge or silent peer
/// cannot pin resources:
///
/// | limit | default | on breach |
/// |---|---|---|
/// | request head size | 8 KiB | `431`, close |
/// | time to send a complete head, from its first byte | 10 s | `408`, close |
/// | idle time between requests on a kept-alive connection | 60 s | close |
///
/// Every request the daemon accepts is a bare head (bodies are refused), so the end of a head is
/// simply the next CRLF CRLF; bytes after it belong to the next (pipelined) request.
final class RequestHeadGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Limits: Sendable {
        var maximumHeadBytes = 8 * 1024
        var headerTimeout: TimeAmount = .seconds(10)
        var idleTimeout: TimeAmount = .seconds(60)
    }

    private let limits: Limits
    /// Bytes of the current, unfinished request head.
    private var headBytes = 0
    /// How many bytes of CR LF CR LF the end of the data seen so far matches.
    private var terminatorMatch = 0
    private var failed = false

    /// When the connection must have made progress, and what happens if it has not: `408` while
    /// a head is incomplete, a silent close while idle between requests.
    private var deadline = NIODeadline.distantFuture
    private var deadlineIsForHead = false
    /// One timer per connection, armed at or before `deadline`. Moving the deadline later (every
    /// request does) does not touch it; when it fires early it re-arms itself at the deadline. So a
    /// busy keep-alive connection schedules a timer about once per timeout period, not twice per
    /// request (which cost 8–10 % of the CPU under load).
    private var timer: Scheduled<Void>?
    private var timerDeadline = NIODeadline.distantFuture

    init(limits: Limits) {
        self.limits = limits
    }

    func channelActive(context: ChannelHandlerContext) {
        setDeadline(.now() + limits.idleTimeout, forHead: false, context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        let buffer = unwrapInboundIn(data)
        // A scan over the raw bytes (not `readableBytesView`, whose bounds-checked iteration
        // was most of this handler's cost per request), remembering only what it must.
        let outcome = buffer.withUnsafeReadableBytes { bytes -> Scan in
            var headBytes = self.headBytes
            var match = terminatorMatch
            var startedHead = false
            var endedHead = false
            for byte in bytes {
                if headBytes == 0 { startedHead = true }
                headBytes += 1
                let expected: UInt8 = match % 2 == 0 ? 13 : 10
                match = byte == expected ? match + 1 : (byte == 13 ? 1 : 0)
                if match == 4 {
                    headBytes = 0
                    match = 0
                    endedHead = true
                    startedHead = false
                } else if headBytes > limits.maximumHeadBytes {
                    return Scan(
                        headBytes: headBytes, match: match, startedHead: startedHead, endedHead: endedHead,
                        tooLarge: true)
                }
            }
            return Scan(
                headBytes: headBytes, match: match, startedHead: startedHead, endedHead: endedHead, tooLarge: false)
        }
        headBytes = outcome.headBytes
        terminatorMatch = outcome.match
        if outcome.tooLarge {
            reject(
                context: context, status: .requestHeaderFieldsTooLarge, code: .requestHeadTooLarge,
                detail: "the request head exceeds \(limits.maximumHeadBytes) bytes")
            return
        }
        // A head still open at the end of this read must be complete within the header timeout
        // of its first byte; otherwise the connection is idle between requests.
        if headBytes > 0 {
            if outcome.startedHead || !deadlineIsForHead {
                setDeadline(.now() + limits.headerTimeout, forHead: true, context: context)
            }
        } else if outcome.endedHead {
            setDeadline(.now() + limits.idleTimeout, forHead: false, context: context)
        }
        context.fireChannelRead(data)
    }

    private struct Scan {
        var headBytes: Int
        var match: Int
        /// A new head began in this read (and is still open at its end, when `headBytes > 0`).
        var startedHead: Bool
        var endedHead: Bool
        var tooLarge: Bool
    }

    private func setDeadline(_ newDeadline: NIODeadline, forHead: Bool, context: ChannelHandlerContext) {
        deadline = newDeadline
        deadlineIsForHead = forHead
        if timer == nil || newDeadline < timerDeadline {
            arm(at: newDeadline, context: context)
        }
    }

    private func arm(at when: NIODeadline, context: ChannelHandlerContext) {
        timer?.cancel()
        timerDeadline = when
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: when) {
            let (handler, context) = loopBound.value
            handler.timerFired(context: context)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        guard !failed, context.channel.isActive else { return }
        if NIODeadline.now() < deadline {
            arm(at: deadline, context: context)
        } else if deadlineIsForHead {
            reject(
                context: context, status: .requestTimeout, code: .requestTimeout,
                detail: "the request head did not arrive within the header timeout")
        } else {
            context.close(promise: nil)  // an idle keep-alive connection: just close it
        }
    }

    /// Writes a minimal error response directly on the wire (this handler sits before the HTTP
    /// encoder) and closes.
    private func reject(context: ChannelHandlerContext, status: HTTPResponseStatus, code: ErrorCode, detail: String) {
        guard !failed else { return }
        failed = true
        timer?.cancel()
        context.writeThenClose(wrapOutboundOut(ErrorResponse.raw(status: status, code: code, detail: detail)))
    }
}
