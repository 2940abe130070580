import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import WebhookTokenCore
import WebhookTokenProtocol

@testable import WebhookTokenServer

/// The socket API's handler without sockets or a daemon: requests go into an
/// `NIOAsyncTestingChannel`, a fake serving protocol answers, responses come out.
@Suite struct TokenHTTPHandlerTests {
    struct FakeProfile: ProfileServing {
        let name: String
        var answer: TokenAnswer
        func currentToken() -> TokenAnswer { answer }
        var isAwaitingFirstToken: Bool { false }
        func firstToken() async -> TokenAnswer { answer }
        func refreshToken(peerUID: UInt32?) async -> TokenAnswer { answer }
        /// When set, a long-poll answers only once this yields (or finishes).
        var held: AsyncStream<Void>? = nil
        func waitForChange(after fingerprint: Substring, maxWait: Duration) async -> TokenAnswer {
            if let held {
                for await _ in held { break }
            }
            return answer
        }
    }

    struct FakeServing: TokenServing {
        var profiles: [String: FakeProfile]
        func profile(named name: Substring?) -> ProfileLookup {
            let names = profiles.keys.sorted()
            guard let name else {
                return profiles["default"].map { .found($0) } ?? .unnamed(available: names)
            }
            return profiles[String(name)].map { .found($0) } ?? .unknown(available: names)
        }
        func statusJSON() -> String { "{\"state\":\"valid\"}\n" }
        func statusText() -> String { "state: valid\n" }
        func metricsText() -> String { "# metrics\n" }
        func shutdown() {}
    }

    static func token(_ value: String) -> TokenAnswer {
        .token(
            PresentedToken(
                token: IssuedToken(accessToken: value, lifetime: .seconds(60), scope: "s"), expiresAtEpochSeconds: 0),
            secondsLeft: 42)
    }

    struct Response {
        var head: HTTPResponseHead
        var body: String
    }

    func exchange(
        _ method: HTTPMethod, _ uri: String, serving: FakeServing,
        access: SharedAccessRules = .everyone(profiles: ["default", "hosted-login"]),
        peer: PeerCredentials? = PeerCredentials(pid: 1, uid: 1000, gid: 1000)
    ) async throws -> Response {
        let channel = NIOAsyncTestingChannel()
        try await channel.testingEventLoop.executeInContext {
            try channel.pipeline.syncOperations.addHandler(
                TokenHTTPHandler(
                    serving: serving, peer: peer, access: access, deniedPeers: DeniedPeerLog(),
                    observer: NoServerObserver(), connections: OpenConnections(limits: .init()),
                    logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })))
        }
        try await channel.writeInbound(
            HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: uri)))
        try await channel.writeInbound(HTTPServerRequestPart.end(nil))
        guard case .head(let head) = try await channel.waitForOutboundWrite(as: HTTPServerResponsePart.self) else {
            throw CancellationError()
        }
        var body = ""
        while true {
            switch try await channel.waitForOutboundWrite(as: HTTPServerResponsePart.self) {
            case .body(.byteBuffer(let buffer)): body += String(buffer: buffer)
            case .body: break
            case .end: return Response(head: head, body: body)
            case .head: throw CancellationError()
            }
        }
    }

    let two = FakeServing(profiles: [
        "default": FakeProfile(name: "default", answer: token("webhooks-token")),
        "hosted-login": FakeProfile(name: "hosted-login", answer: token("config-token")),
    ])

    @Test func theRouteTableDispatchesEveryRoute() async throws {
        #expect(try await exchange(.GET, "/v1/token?format=raw", serving: two).body == "webhooks-token")
        #expect(try await exchange(.GET, "/v1/tokens/hosted-login?format=raw", serving: two).body == "config-token")
        #expect(
            try await exchange(.POST, "/v1/tokens/hosted-login/refresh?format=raw", serving: two).body == "config-token"
        )
        #expect(try await exchange(.GET, "/v1/status", serving: two).body == "{\"state\":\"valid\"}\n")
        #expect(try await exchange(.GET, "/metrics", serving: two).body == "# metrics\n")
        let json = try await exchange(.GET, "/v1/token", serving: two)
        #expect(json.body.contains(#""access_token":"webhooks-token""#))
        #expect(json.body.contains(#""expires_in":42"#))
    }

    @Test func aWrongMethodGetsTheRoutesAllowHeader() async throws {
        let response = try await exchange(.POST, "/v1/tokens/hosted-login", serving: two)
        #expect(response.head.status == .methodNotAllowed)
        #expect(response.head.headers.first(name: "Allow") == "GET, HEAD")
        #expect(response.head.headers.first(name: ProtocolHeader.error) == ErrorCode.methodNotAllowed.rawValue)
    }

    @Test func anUnknownPathListsTheRoutes() async throws {
        let response = try await exchange(.GET, "/v2/token", serving: two)
        #expect(response.head.status == .notFound)
        #expect(response.body.contains("/v1/tokens/{name}/refresh"))
        for route in SocketRoute.allCases { #expect(response.body.contains(route.pattern)) }
    }

    @Test func unknownAndUnnamedProfilesAreNamed404s() async throws {
        let unknown = try await exchange(.GET, "/v1/tokens/nope", serving: two)
        #expect(unknown.head.status == .notFound)
        #expect(unknown.head.headers.first(name: ProtocolHeader.error) == "unknown_profile")
        let noDefault = FakeServing(profiles: [
            "a": FakeProfile(name: "a", answer: Self.token("x")),
            "b": FakeProfile(name: "b", answer: Self.token("y")),
        ])
        let unnamed = try await exchange(
            .GET, "/v1/token", serving: noDefault, access: .everyone(profiles: ["a", "b"]))
        #expect(unnamed.head.headers.first(name: ProtocolHeader.error) == "profile_required")
        #expect(unnamed.body.contains("profiles: a, b"))
    }

    @Test func aProfileThePeerMayNotUseIsForbiddenAndNotListed() async throws {
        let access = SharedAccessRules([
            "default": .everyone,
            "hosted-login": PeerAccessRule(allowedUserIDs: [0], allowedGroupIDs: []),
        ])
        let forbidden = try await exchange(.GET, "/v1/tokens/hosted-login", serving: two, access: access)
        #expect(forbidden.head.status == .forbidden)
        #expect(forbidden.head.headers.first(name: ProtocolHeader.error) == "peer_not_allowed")
        let unknown = try await exchange(.GET, "/v1/tokens/nope", serving: two, access: access)
        #expect(unknown.body.contains("profiles: default"))
        #expect(!unknown.body.contains("hosted-login"))
    }

    @Test func aRefreshThatBroughtNoNewTokenSaysWhy() async throws {
        var serving = two
        serving.profiles["default"]?.answer = .token(
            PresentedToken(
                token: IssuedToken(accessToken: "t", lifetime: .seconds(60), scope: "s"), expiresAtEpochSeconds: 0),
            secondsLeft: 30, refresh: .init(code: "server_error", detail: "endpoint answered 503\n\u{1b}[2J"))
        let response = try await exchange(.POST, "/v1/token/refresh", serving: serving)
        #expect(response.head.status == .ok)
        #expect(
            response.head.headers.first(name: ProtocolHeader.refresh)
                == #"server_error; endpoint answered 503\x0a\x1b[2J"#)
    }
}
