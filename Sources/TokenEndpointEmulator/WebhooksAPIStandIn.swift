import Synchronization

/// A small stand-in for the Identity Cloud webhooks API, served by the emulator beside its token
/// endpoint on every path with a `webhooks` segment (`/{customer}/webhooks/...`), for the
/// authenticating proxy's tests and benchmark.
///
/// Like the real API it accepts only a bearer token that it (the emulator) issued and still
/// considers valid, and answers 403 otherwise; it can end a token early, as the real one can; and
/// it records every request it received, so that a test can check what reached it.
public final class WebhooksAPIStandIn: Sendable {
    /// A request as the stand-in received it.
    public struct Received: Sendable {
        public var method: String
        /// The target, query included.
        public var target: String
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]
        /// The bearer token, if the request carried one.
        public var bearerToken: String?
        /// Whether the token was accepted (not: answered 403).
        public var accepted: Bool

        public func header(_ name: String) -> [String] {
            headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
        }
    }

    /// How the stand-in answers.
    public enum Behavior: Sendable, Equatable {
        case serve
        /// Accept requests and never answer.
        case hang
    }

    struct State {
        var ended: Set<String> = []
        var received: [Received] = []
        var subscriptions: [String] = []
        var behavior = Behavior.serve
    }

    private let state = Mutex(State())

    init() {}

    /// Ends `token` early: from now on it is refused, as after a revocation on the server.
    public func endEarly(token: String) {
        state.withLock { _ = $0.ended.insert(token) }
    }

    public func setBehavior(_ behavior: Behavior) {
        state.withLock { $0.behavior = behavior }
    }

    public var received: [Received] { state.withLock { $0.received } }

    /// Whether the emulator serves `path` from the stand-in rather than as its token endpoint.
    static func handles(path: Substring) -> Bool {
        path.split(separator: "/").contains("webhooks")
    }

    /// The answer to one complete request.
    func decide(
        method: String, target: String, headers: [(name: String, value: String)], body: [UInt8],
        issued: [TokenEndpointEmulator.IssuedRecord]
    ) -> TokenEndpointEmulator.Decision {
        let authorization = headers.first { $0.name.lowercased() == "authorization" }?.value
        let token = authorization.flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        let now = ContinuousClock.now
        return state.withLock { state in
            let valid =
                token.map { token in
                    !state.ended.contains(token) && issued.contains { $0.token == token && $0.expiresAt > now }
                } ?? false
            state.received.append(
                Received(
                    method: method, target: target, headers: headers, body: body, bearerToken: token, accepted: valid))
            if state.behavior == .hang { return .hang }
            let json = [TokenEndpointEmulator.Header("Content-Type", "application/json")]
            guard valid else {
                return .answer(
                    status: 403, headers: json,
                    body: #"{"error":"forbidden","error_description":"the access token is invalid or has expired"}"#)
            }
            let path = target.prefix { $0 != "?" }
            switch (method, path.split(separator: "/").last) {
            case ("GET", "subscriptions"):
                let list = state.subscriptions.joined(separator: ",")
                return .answer(status: 200, headers: json, body: #"{"subscriptions":[\#(list)]}"#)
            case ("POST", "subscriptions"):
                let id = "sub-\(state.subscriptions.count + 1)"
                state.subscriptions.append(#"{"id":"\#(id)"}"#)
                let echoed = String(decoding: body, as: UTF8.self)
                return .answer(
                    status: 201, headers: json,
                    body: #"{"id":"\#(id)","received":\#(echoed.isEmpty ? "null" : echoed)}"#)
            case ("POST", "uploads"):
                return .answer(status: 201, headers: json, body: #"{"bytes":\#(body.count)}"#)
            case ("GET", "large"):
                // `?bytes=N`: a body of N bytes, sent in chunks as the reader takes them.
                let size = target.split(separator: "bytes=").last.flatMap { Int($0.prefix { $0.isNumber }) } ?? 0
                return .stream(status: 200, bytes: size)
            default:
                return .answer(status: 404, headers: json, body: #"{"error":"not_found"}"#)
            }
        }
    }
}
