import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import WebhookTokenCore
import WebhookTokenProtocol

@testable import WebhookTokenServer

/// The token socket's limits on slow, silent and oversized peers, and its graceful shutdown, on
/// the production pipeline (NIO's HTTP server pipeline and ``TokenHTTPHandler``) in an
/// `NIOAsyncTestingChannel` whose clock the test moves: each deadline is checked just before and
/// just after it passes.
@Suite struct ConnectionDeadlineTests {
    typealias FakeProfile = TokenHTTPHandlerTests.FakeProfile
    typealias FakeServing = TokenHTTPHandlerTests.FakeServing

    /// 400 ms for a head, 1 s idle: the sweep looks every 100 ms.
    static let limits = TokenSocketServer.Limits(headerTimeout: .milliseconds(400), idleTimeout: .seconds(1))

    struct Connection {
        let channel: NIOAsyncTestingChannel
        let connections: OpenConnections

        func send(_ text: String) async throws {
            try await channel.writeInbound(ByteBuffer(string: text))
        }

        func advance(_ amount: TimeAmount) async {
            await channel.testingEventLoop.advanceTime(by: amount)
        }

        /// Everything written to the peer so far.
        func received() async throws -> String {
            var text = ""
            while let buffer = try await channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
            return text
        }

        var isOpen: Bool { channel.isActive }
    }

    func connect(serving: FakeServing = Self.serving) async throws -> Connection {
        let channel = NIOAsyncTestingChannel()
        let connections = OpenConnections(limits: Self.limits)
        try await channel.testingEventLoop.executeInContext {
            try TokenSocketServer.addHandlers(
                to: channel.pipeline.syncOperations,
                TokenHTTPHandler(
                    serving: serving, peer: nil, access: .everyone(profiles: ["default"]),
                    deniedPeers: DeniedPeerLog(), observer: NoServerObserver(), connections: connections,
                    logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })))
        }
        try await channel.connect(to: SocketAddress(unixDomainSocketPath: "/test.sock")).get()
        return Connection(channel: channel, connections: connections)
    }

    static let serving = FakeServing(profiles: [
        "default": FakeProfile(name: "default", answer: TokenHTTPHandlerTests.token("webhooks-token"))
    ])

    @Test func aHeadIncompleteWithinTheHeaderTimeoutOfItsFirstBytesGets408() async throws {
        let connection = try await connect()
        try await connection.send("GET /v1/token HTTP/1.1\r\n")
        await connection.advance(.milliseconds(300))
        // More bytes do not move the deadline: a peer dripping its head is cut off all the same.
        try await connection.send("Host: x\r\n")
        await connection.advance(.milliseconds(50))
        #expect(try await connection.received() == "")
        #expect(connection.isOpen)
        await connection.advance(.milliseconds(150))
        let answer = try await connection.received()
        #expect(answer.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        #expect(answer.contains(#""error":"request_timeout""#))
        #expect(!connection.isOpen)
    }

    @Test func anIdleConnectionIsClosedSilentlyAfterTheIdleTimeout() async throws {
        let connection = try await connect()
        try await connection.send("GET /v1/token?format=raw HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try await connection.received().hasSuffix("\r\n\r\nwebhooks-token"))
        // Idle, not a head under way: the header timeout does not apply.
        await connection.advance(.milliseconds(900))
        #expect(connection.isOpen)
        await connection.advance(.milliseconds(200))
        #expect(!connection.isOpen)
        #expect(try await connection.received() == "")
    }

    @Test func aRequestThatIsBeingAnsweredIsNeverTimedOut() async throws {
        let (held, release) = AsyncStream.makeStream(of: Void.self)
        var profile = FakeProfile(name: "default", answer: TokenHTTPHandlerTests.token("changed"))
        profile.held = held
        let connection = try await connect(serving: FakeServing(profiles: ["default": profile]))
        try await connection.send("GET /v1/token?format=raw&wait=30 HTTP/1.1\r\nHost: x\r\n\r\n")
        await connection.advance(.seconds(5))
        #expect(connection.isOpen)
        release.yield()
        release.finish()
        var answer = ""
        for _ in 0..<500 where !answer.hasSuffix("changed") {
            answer += try await connection.received()
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(answer.hasSuffix("\r\n\r\nchanged"))
        #expect(connection.isOpen)
    }

    @Test func aHeadOverTheLimitIsRefusedBeforeItEnds() async throws {
        let connection = try await connect()
        try await connection.send("GET /v1/token HTTP/1.1\r\nX-Padding: " + String(repeating: "a", count: 9000))
        let answer = try await connection.received()
        #expect(answer.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
        #expect(answer.contains(#""error":"request_head_too_large""#))
        #expect(answer.contains("8192 bytes"))
        #expect(!connection.isOpen)
    }

    @Test func quiescingClosesIdleConnectionsAndFinishesTheOthersAnswers() async throws {
        let idle = try await connect()
        try await idle.send("GET /v1/token HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = try await idle.received()
        try await idle.connections.quiesce(on: idle.channel.eventLoop).get()
        #expect(!idle.isOpen)

        let (held, release) = AsyncStream.makeStream(of: Void.self)
        var profile = FakeProfile(name: "default", answer: TokenHTTPHandlerTests.token("changed"))
        profile.held = held
        let busy = try await connect(serving: FakeServing(profiles: ["default": profile]))
        try await busy.send("GET /v1/token?format=raw&wait=30 HTTP/1.1\r\nHost: x\r\n\r\n")
        let finished = busy.connections.quiesce(on: busy.channel.eventLoop)
        #expect(busy.isOpen)
        release.yield()
        try await finished.get()
        let answer = try await busy.received()
        #expect(answer.lowercased().contains("connection: close\r\n"), "\(answer)")
        #expect(answer.hasSuffix("changed"))
        #expect(!busy.isOpen)
    }

    @Test func aBodyThatStopsComingIsClosedAfterTheIdleTimeout() async throws {
        let connection = try await connect()
        try await connection.send("GET /v1/token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        await connection.advance(.milliseconds(600))
        try await connection.send("def")  // still coming: the idle timeout runs from this read
        await connection.advance(.milliseconds(900))
        #expect(connection.isOpen)
        await connection.advance(.milliseconds(200))
        #expect(!connection.isOpen)
    }

    @Test func aClosingAnswerThePeerDoesNotReadIsClosedAfterTheIdleTimeout() async throws {
        let connection = try await connect()
        try await connection.channel.testingEventLoop.executeInContext {
            try connection.channel.pipeline.syncOperations.addHandler(UnreadWrites(), position: .first)
        }
        try await connection.send("GET /v1/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await connection.advance(.milliseconds(900))
        #expect(connection.isOpen, "the answer is still being written")
        await connection.advance(.milliseconds(200))
        #expect(!connection.isOpen)
    }

    static func answerCount(_ text: String) -> Int {
        text.split(separator: "HTTP/1.1 200 OK", omittingEmptySubsequences: false).count - 1
    }

    @Test func requestsPipelinedBehindASlowAnswerLeaveTheConnectionIdleNotTimingAHead() async throws {
        let (held, release) = AsyncStream.makeStream(of: Void.self)
        var profile = FakeProfile(name: "default", answer: TokenHTTPHandlerTests.token("changed"))
        profile.held = held
        let connection = try await connect(serving: FakeServing(profiles: ["default": profile]))
        let request = "GET /v1/token?format=raw HTTP/1.1\r\nHost: x\r\n\r\n"
        try await connection.send(
            "GET /v1/token?format=raw&wait=30 HTTP/1.1\r\nHost: x\r\n\r\n" + request + request)
        release.yield()
        release.finish()
        var answers = ""
        for _ in 0..<500 where Self.answerCount(answers) < 3 {
            answers += try await connection.received()
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(Self.answerCount(answers) == 3, "\(answers)")
        // Idle after the third answer: closed silently at the idle timeout, no 408 before it.
        await connection.advance(.milliseconds(900))
        #expect(connection.isOpen)
        #expect(try await connection.received() == "")
        await connection.advance(.milliseconds(200))
        #expect(!connection.isOpen)
        #expect(try await connection.received() == "")
    }
}

/// A peer that reads nothing: writes are never completed, so a close that waits for its answer
/// to be written waits forever.
final class UnreadWrites: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {}
    func flush(context: ChannelHandlerContext) {}
}
