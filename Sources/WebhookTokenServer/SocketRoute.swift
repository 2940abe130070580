public import NIOHTTP1
import WebhookTokenProtocol

/// The socket API's routes, in one table: dispatch, the metric label, the `Allow` header, the
/// hint of a 404 and the reference documentation all come from here.
public enum SocketRoute: String, CaseIterable, Sendable {
    case token
    case refresh
    case profileToken
    case profileRefresh
    case status
    case metrics

    /// The path, with `{name}` for a profile's name.
    public var pattern: String {
        switch self {
        case .token: return SocketProtocol.tokenPath
        case .refresh: return SocketProtocol.refreshPath
        case .profileToken: return SocketProtocol.tokenPath(profile: "{name}")
        case .profileRefresh: return SocketProtocol.refreshPath(profile: "{name}")
        case .status: return SocketProtocol.statusPath
        case .metrics: return SocketProtocol.metricsPath
        }
    }

    public var methods: [HTTPMethod] {
        switch self {
        case .token, .profileToken, .status, .metrics: return [.GET, .HEAD]
        case .refresh, .profileRefresh: return [.POST]
        }
    }

    /// What the route answers, for the reference.
    public var summary: String {
        switch self {
        case .token: return "the token of the profile \"default\" (or of the only one)"
        case .refresh: return "fetch a new token of that profile now, rate-limited and single-flight"
        case .profileToken: return "the token of the profile {name}"
        case .profileRefresh: return "fetch a new token of the profile {name} now"
        case .status: return "the status of every profile, as JSON (text with ?format=text)"
        case .metrics: return "Prometheus text exposition"
        }
    }

    /// The metric label of requests on this route.
    var metricLabel: ServerRoute {
        switch self {
        case .token, .profileToken: return .token
        case .refresh, .profileRefresh: return .refresh
        case .status: return .status
        case .metrics: return .metrics
        }
    }

    var allowHeader: String { methods.map(\.rawValue).joined(separator: ", ") }

    /// `GET /v1/token, POST /v1/token/refresh, …`, for the 404 hint.
    static let hint = allCases.map { "\($0.methods[0]) \($0.pattern)" }.joined(separator: ", ")

    /// The route of a path and the profile it names, if any. Hot path: plain comparisons.
    static func match(_ path: Substring) -> (route: SocketRoute, profile: Substring?)? {
        switch path {
        case SocketProtocol.tokenPath: return (.token, nil)
        case SocketProtocol.refreshPath: return (.refresh, nil)
        case SocketProtocol.statusPath: return (.status, nil)
        case SocketProtocol.metricsPath: return (.metrics, nil)
        default: break
        }
        let prefix = SocketProtocol.profileTokensPrefix
        guard path.utf8.starts(with: prefix.utf8) else { return nil }
        var rest = path.dropFirst(prefix.utf8.count)
        var route = SocketRoute.profileToken
        if rest.utf8.hasSuffixBytes("/refresh".utf8) {
            rest = rest.dropLast("/refresh".utf8.count)
            route = .profileRefresh
        }
        guard !rest.isEmpty, !rest.utf8.contains(UInt8(ascii: "/")) else { return nil }
        return (route, rest)
    }
}

extension Substring.UTF8View {
    fileprivate func hasSuffixBytes(_ suffix: String.UTF8View) -> Bool {
        count >= suffix.count && self.suffix(suffix.count).elementsEqual(suffix)
    }
}

extension SocketRoute {
    /// The routes as a Markdown table: the README's, kept equal to this by a test.
    public static func referenceMarkdown() -> String {
        var text = "| request | answer |\n|---|---|\n"
        for route in allCases {
            let methods = route.methods.map(\.rawValue).joined(separator: "/")
            text += "| `\(methods) \(route.pattern)` | \(route.summary) |\n"
        }
        return text
    }
}
