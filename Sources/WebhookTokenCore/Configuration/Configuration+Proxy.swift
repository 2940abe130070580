extension Configuration {
    /// `[proxy]` (or `[profiles.NAME.proxy]`): a socket on which the profile's API calls are made
    /// for the consumer, with the profile's token added by the daemon, so that the consumer never
    /// holds the token and never sees a 401/403 for an expired one.
    public struct Proxy: Sendable, Equatable {
        /// Where consumers send their API requests (at most 107 bytes); created like the token
        /// socket, with `[socket]`'s mode and group.
        public var socketPath: String
        /// The origin requests go to — `https://host[:port]`, never anywhere a consumer names.
        public var upstream: TokenURL
        /// Paths outside these prefixes are refused (`path_not_allowed`); empty: every path.
        public var allowedPathPrefixes: [String]
        /// The largest request body kept, so that the request can be replayed with a fresh token
        /// after a 401/403; a larger one goes upstream as it arrives, and is not replayed.
        public var maximumRequestBody: Int
        /// One upstream exchange, connect to last byte.
        public var timeout: Duration

        public static let defaultMaximumRequestBody = 1024 * 1024
        public static let defaultTimeout = Duration.seconds(30)

        public init(
            socketPath: String, upstream: TokenURL, allowedPathPrefixes: [String] = [],
            maximumRequestBody: Int = defaultMaximumRequestBody, timeout: Duration = defaultTimeout
        ) {
            self.socketPath = socketPath
            self.upstream = upstream
            self.allowedPathPrefixes = allowedPathPrefixes
            self.maximumRequestBody = maximumRequestBody
            self.timeout = timeout
        }

        /// The origin (`scheme://host[:port]`) of `url`: the proxy's default upstream, from the
        /// profile's `base_url` or `token_url`.
        public static func origin(of url: TokenURL) -> TokenURL {
            // An origin of a valid URL is a valid URL.
            let host = url.host.contains(":") ? "[\(url.host)]" : url.host
            return (try? TokenURL(parsing: "\(url.scheme)://\(host)\(url.port.map { ":\($0)" } ?? "")")) ?? url
        }

        /// The upstream as text, without the path `TokenURL` gives a bare origin (`/`).
        public var upstreamOrigin: String {
            let text = upstream.description
            return text.hasSuffix("/") ? String(text.dropLast()) : text
        }

        /// Whether a request for `path` may go upstream.
        public func allows(path: Substring) -> Bool {
            allowedPathPrefixes.isEmpty || allowedPathPrefixes.contains { path.hasPrefix($0) }
        }
    }
}

/// Sizes in the configuration file: a whole number of bytes, or a number with a binary unit
/// (`"64KiB"`, `"1MiB"`). Decimal units (`"1MB"`) are refused: a guess between 10⁶ and 2²⁰ is
/// how surprises start.
public enum ByteSizeSyntax {
    public static let expected = "a size such as \"64KiB\" or \"1MiB\" (B, KiB, MiB, GiB), or a number of bytes"

    public static func parse(_ text: String) -> Int? {
        let digits = text.prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty, digits.count <= 12, let value = Int(digits) else { return nil }
        let unit = text.dropFirst(digits.count).trimmingCharacters()
        let scale: Int
        switch unit {
        case "", "B": scale = 1
        case "KiB": scale = 1 << 10
        case "MiB": scale = 1 << 20
        case "GiB": scale = 1 << 30
        default: return nil
        }
        let (product, overflow) = value.multipliedReportingOverflow(by: scale)
        return overflow ? nil : product
    }

    /// The shortest exact form: `"1MiB"`, `"1536KiB"`, `"100B"`.
    public static func format(_ bytes: Int) -> String {
        for (unit, scale) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        where bytes > 0 && bytes % scale == 0 {
            return "\(bytes / scale)\(unit)"
        }
        return "\(bytes)B"
    }
}
