public import NIOCore
import NIOHTTP1
public import NIOPosix
import NIOSSL
import Synchronization
import WebhookTokenCore

/// A local stand-in for the Identity Cloud token endpoint (or any OAuth 2.0 client-credentials
/// endpoint), for the quick-start demo and for the tests.
///
/// It speaks the real protocol — it checks the Basic credentials (form-urlencoded, then base64),
/// the form body's `grant_type` and `scope`, and answers with a fresh random token and
/// `expires_in` — and it can be told to misbehave in every way a real endpoint or network can:
/// error statuses, `Retry-After`, hangs, resets, garbage, oversized or dripping bodies, and lying
/// `expires_in` values. It records every token it issued, so tests can check that the daemon never
/// serves one past its expiry.
public final class TokenEndpointEmulator: Sendable {
    public struct Options: Sendable {
        public var clientID: String
        public var clientSecret: String
        /// `expires_in` of issued tokens, in seconds.
        public var expiresIn: Int
        /// PEM files for HTTPS; plain HTTP (for loopback) when `nil`.
        public var tls: (certificateChainFile: String, privateKeyFile: String)?

        public init(
            clientID: String, clientSecret: String, expiresIn: Int = 30,
            tls: (certificateChainFile: String, privateKeyFile: String)? = nil
        ) {
            self.clientID = clientID
            self.clientSecret = clientSecret
            self.expiresIn = expiresIn
            self.tls = tls
        }
    }

    /// How the emulator answers the next requests.
    public enum Behavior: Sendable, Equatable {
        /// Check the request and issue a token (or answer 401/400 as the real endpoint would).
        case issue
        /// Issue a token whose `expires_in` is this raw JSON text (`"0"`, `"-5"`, `"\"3600\""`, or `nil` to omit it).
        case issueWithExpiresIn(String?)
        /// A fixed answer.
        case respond(status: Int, headers: [Header], body: String)
        /// Accept the request and never answer.
        case hang
        /// Close the connection abruptly (TCP reset) without answering.
        case reset
        /// Start a 200 answer and then reset the connection in the middle of the body.
        case resetMidResponse
        /// A valid token JSON, sent one byte every `interval`.
        case drip(interval: Duration)
        /// A 200 `application/json` answer larger than any token response may be.
        case oversized
        /// Mint the token at once (its lifetime starts now), but send the answer this much later:
        /// a slow endpoint or network, which the daemon must not let stretch the token's life.
        case issueDelayed(by: Duration)
        /// Issue a token, and answer with this raw JSON text as `scope` (`nil` to omit it).
        case issueWithScope(String?)
        /// Answer with the last token issued again (with a fresh lifetime), as endpoints that
        /// cache tokens do.
        case reissueLast
    }

    public struct Header: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    /// A token the emulator issued.
    public struct IssuedRecord: Sendable {
        public var token: String
        public var expiresIn: Int
        /// When it was issued, on the continuous clock.
        public var issuedAt: ContinuousClock.Instant
        public var expiresAt: ContinuousClock.Instant { issuedAt.advanced(by: .seconds(expiresIn)) }
    }

    struct State {
        var options: Options
        var behavior: Behavior = .issue
        var issued: [IssuedRecord] = []
        var requests = 0
        var requestTimes: [ContinuousClock.Instant] = []
        var inFlight = 0
        var maxInFlight = 0
        var lastScope: String?
    }

    let state: Mutex<State>
    /// The webhooks API beside the token endpoint, on paths with a `webhooks` segment.
    public let webhooksAPI = WebhooksAPIStandIn()
    private let channel: Mutex<(any Channel)?> = Mutex(nil)
    /// Open connections, closed on `shutdown()` so that "endpoint down" means down, also for a
    /// client holding a kept-alive connection.
    let connections = Mutex<(open: [ObjectIdentifier: any Channel], stopped: Bool)>(([:], false))
    private let group: any EventLoopGroup

    public init(options: Options, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.state = Mutex(State(options: options))
        self.group = group
    }

    // MARK: - Control

    public func setBehavior(_ behavior: Behavior) {
        state.withLock { $0.behavior = behavior }
    }

    /// Changes the credentials it accepts (to revoke and restore a client in tests).
    public func setCredentials(clientID: String, clientSecret: String) {
        state.withLock {
            $0.options.clientID = clientID
            $0.options.clientSecret = clientSecret
        }
    }

    public func setExpiresIn(_ seconds: Int) {
        state.withLock { $0.options.expiresIn = seconds }
    }

    public var issuedTokens: [IssuedRecord] { state.withLock { $0.issued } }
    /// Token requests received (complete requests, whatever the answer).
    public var requestCount: Int { state.withLock { $0.requests } }
    /// When each request arrived, on the continuous clock.
    public var requestTimes: [ContinuousClock.Instant] { state.withLock { $0.requestTimes } }
    /// The most requests ever in flight at once: the daemon must never exceed 1.
    public var maximumConcurrentRequests: Int { state.withLock { $0.maxInFlight } }
    /// Requests in flight now (a hung request stays in flight until its connection closes).
    public var concurrentRequests: Int { state.withLock { $0.inFlight } }
    public var lastRequestedScope: String? { state.withLock { $0.lastScope } }

    // MARK: - Lifecycle

    /// Starts listening; returns the port (pass 0 for any free port).
    @discardableResult
    public func start(host: String = "127.0.0.1", port: Int = 0) async throws -> Int {
        let sslContext: NIOSSLContext? = try state.withLock { state in
            guard let tls = state.options.tls else { return nil }
            let chain = try NIOSSLCertificate.fromPEMFile(tls.certificateChainFile).map {
                NIOSSLCertificateSource.certificate($0)
            }
            let configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain,
                privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.privateKeyFile, format: .pem)))
            return try NIOSSLContext(configuration: configuration)
        }
        connections.withLock { $0.stopped = false }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                // A connection accepted while `shutdown()` runs is closed here, not left serving.
                let accepted = self.connections.withLock { connections in
                    if !connections.stopped { connections.open[id] = channel }
                    return !connections.stopped
                }
                guard accepted else { return channel.close() }
                channel.closeFuture.whenComplete { _ in
                    _ = self.connections.withLock { $0.open.removeValue(forKey: id) }
                }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let sslContext {
                        try sync.addHandler(NIOSSLServerHandler(context: sslContext))
                    }
                    try sync.configureHTTPServerPipeline(withErrorHandling: true)
                    try sync.addHandler(EmulatorHTTPHandler(emulator: self))
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        self.channel.withLock { $0 = channel }
        return channel.localAddress?.port ?? port
    }

    public func shutdown() async {
        let channel = self.channel.withLock { current -> (any Channel)? in
            defer { current = nil }
            return current
        }
        try? await channel?.close()
        let open = connections.withLock { connections in
            connections.stopped = true
            return Array(connections.open.values)
        }
        for connection in open { try? await connection.close() }
    }

    // MARK: - Protocol

    /// What to do with one complete request.
    enum Decision {
        case answer(status: Int, headers: [Header], body: String)
        case hang
        case reset
        case resetMidResponse(body: String)
        case drip(body: String, interval: Duration)
        case delayed(status: Int, headers: [Header], body: String, delay: Duration)
        /// A body of this many bytes, written chunk by chunk as the peer reads.
        case stream(status: Int, bytes: Int)
    }

    func decide(method: String, authorization: String?, contentType: String?, body: String) -> Decision {
        state.withLock { state in
            state.requests += 1
            state.requestTimes.append(.now)
            let options = state.options
            guard method == "POST" else {
                return .answer(
                    status: 405, headers: [], body: #"{"error":"invalid_request","error_description":"POST required"}"#)
            }
            switch state.behavior {
            case .respond(let status, let headers, let body):
                return .answer(status: status, headers: headers, body: body)
            case .hang:
                return .hang
            case .reset:
                return .reset
            case .oversized:
                let padding = String(repeating: "x", count: TokenResponse.maximumBodySize + 1024)
                return .answer(
                    status: 200, headers: [],
                    body: #"{"access_token":"\#(padding)","token_type":"Bearer","expires_in":3600}"#)
            case .issue, .issueWithExpiresIn, .resetMidResponse, .drip, .issueDelayed, .issueWithScope, .reissueLast:
                break
            }
            guard let (clientID, secret) = Self.decodeBasic(authorization), clientID == options.clientID,
                secret == options.clientSecret
            else {
                return .answer(
                    status: 401, headers: [Header("WWW-Authenticate", "Basic")],
                    body: #"{"error":"invalid_client","error_description":"Client authentication failed"}"#)
            }
            guard contentType?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true,
                let fields = FormURLEncoding.decodeFields(body)
            else {
                return .answer(
                    status: 400, headers: [],
                    body: #"{"error":"invalid_request","error_description":"expected a form body"}"#)
            }
            let grant = fields.first { $0.0 == "grant_type" }?.1
            guard grant == "client_credentials" else {
                return .answer(
                    status: 400, headers: [],
                    body: #"{"error":"unsupported_grant_type","error_description":"only client_credentials"}"#)
            }
            guard let scope = fields.first(where: { $0.0 == "scope" })?.1, !scope.isEmpty, !scope.contains("forbidden")
            else {
                return .answer(
                    status: 400, headers: [],
                    body: #"{"error":"invalid_scope","error_description":"scope not permitted for this client"}"#)
            }
            state.lastScope = scope
            var token = Self.randomToken()
            if case .reissueLast = state.behavior, let last = state.issued.last { token = last.token }
            var expiresText = String(options.expiresIn)
            if case .issueWithExpiresIn(let raw) = state.behavior { expiresText = raw ?? "" }
            let expiresField = expiresText.isEmpty ? "" : #","expires_in":\#(expiresText)"#
            var scopeField = #","scope":\#(JSONText.string(scope))"#
            if case .issueWithScope(let raw) = state.behavior { scopeField = raw.map { #","scope":\#($0)"# } ?? "" }
            let json = #"{"access_token":"\#(token)","token_type":"Bearer"\#(expiresField)\#(scopeField)}"#
            if let seconds = Int(expiresText), seconds > 0 {
                state.issued.append(IssuedRecord(token: token, expiresIn: seconds, issuedAt: .now))
            }
            switch state.behavior {
            case .resetMidResponse: return .resetMidResponse(body: json)
            case .drip(let interval): return .drip(body: json, interval: interval)
            case .issueDelayed(let delay): return .delayed(status: 200, headers: [], body: json, delay: delay)
            default: return .answer(status: 200, headers: [], body: json)
            }
        }
    }

    func requestStarted() {
        state.withLock {
            $0.inFlight += 1
            $0.maxInFlight = max($0.maxInFlight, $0.inFlight)
        }
    }

    func requestFinished() {
        state.withLock { $0.inFlight -= 1 }
    }

    static func decodeBasic(_ header: String?) -> (String, String)? {
        guard let header, header.hasPrefix("Basic "),
            let decoded = Base64.decode(header.dropFirst(6)),
            let text = String(validating: decoded, as: UTF8.self),
            let colon = text.firstIndex(of: ":"),
            let id = FormURLEncoding.decode(text[..<colon]),
            let secret = FormURLEncoding.decode(text[text.index(after: colon)...])
        else { return nil }
        return (id, secret)
    }

    /// 32 random bytes as URL-safe base64: shaped like a real opaque bearer token.
    public static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return String(
            Base64.encode(bytes).compactMap { character -> Character? in
                switch character {
                case "+": return "-"
                case "/": return "_"
                case "=": return nil
                default: return character
                }
            })
    }
}
