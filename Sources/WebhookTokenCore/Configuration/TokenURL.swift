/// A validated token endpoint URL.
///
/// Only `https` is accepted, except for loopback hosts (exactly `localhost`, `127.0.0.0/8`, `::1`), where
/// plain `http` is allowed for local emulators and test endpoints: the client secret must never
/// cross a network in clear text.
public struct TokenURL: Sendable, Equatable, CustomStringConvertible {
    public let scheme: String
    public let host: String
    public let port: Int?
    /// The path and query, starting with `/`.
    public let pathAndQuery: String

    public var description: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        let portPart = port.map { ":\($0)" } ?? ""
        return "\(scheme)://\(hostPart)\(portPart)\(pathAndQuery)"
    }

    /// Why a string is not an acceptable token URL.
    public enum Problem: Error, Equatable, CustomStringConvertible {
        case notAURL
        case unsupportedScheme(String)
        case plainHTTPToNonLoopbackHost(String)
        case missingHost
        case hasUserInfo
        case hasFragment
        case badPort(String)

        public var description: String {
            switch self {
            case .notAURL:
                return "not an absolute URL such as \"https://v1.api.us.janrain.com\""
            case .unsupportedScheme(let scheme):
                return "the scheme \"\(scheme)\" is not supported; use https (or http for a loopback host)"
            case .plainHTTPToNonLoopbackHost(let host):
                return
                    "plain http is refused for the non-loopback host \"\(host)\": the client secret would cross the network unencrypted; use https"
            case .missingHost:
                return "the URL has no host"
            case .hasUserInfo:
                return "the URL must not carry user information; put the client id in [credentials]"
            case .hasFragment:
                return "the URL must not have a #fragment"
            case .badPort(let port):
                return "the port \"\(port)\" is not a number from 1 to 65535"
            }
        }
    }

    /// Parses an absolute http(s) URL. Deliberately small: token URLs are `scheme://host[:port]/path[?query]`.
    public init(parsing string: String) throws(Problem) {
        guard let colon = string.firstIndex(of: ":"), string[colon...].hasPrefix("://") else { throw .notAURL }
        let scheme = string[..<colon].lowercased()
        guard scheme == "https" || scheme == "http" else {
            throw scheme.isEmpty ? .notAURL : .unsupportedScheme(scheme)
        }
        let rest = string[string.index(colon, offsetBy: 3)...]
        if rest.contains("#") { throw .hasFragment }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var pathAndQuery = String(rest[authorityEnd...])
        if pathAndQuery.isEmpty {
            pathAndQuery = "/"
        } else if pathAndQuery.hasPrefix("?") {
            pathAndQuery = "/" + pathAndQuery
        }
        if authority.contains("@") { throw .hasUserInfo }
        if pathAndQuery.contains(where: { $0 == " " || $0.isNewline }) { throw .notAURL }

        var host: Substring
        var portString: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw .notAURL }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let afterClose = authority[authority.index(after: close)...]
            if afterClose.hasPrefix(":") {
                portString = afterClose.dropFirst()
            } else if !afterClose.isEmpty {
                throw .notAURL
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portString = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else { throw .missingHost }
        // Brackets only delimit an IPv6 literal. A host such as `]:` (from `https://]::1`) was
        // accepted and then described as `https://[]:]:1/`, which no longer parses (found by
        // EncodingPropertyTests).
        if host.contains(where: { $0 == "[" || $0 == "]" }) { throw .notAURL }
        var port: Int?
        if let portString {
            guard let value = Int(portString), (1...65535).contains(value) else { throw .badPort(String(portString)) }
            port = value
        }
        let hostName = host.lowercased()
        if scheme == "http" && !Self.isLoopback(hostName) {
            throw .plainHTTPToNonLoopbackHost(hostName)
        }
        self.scheme = scheme
        self.host = hostName
        self.port = port
        self.pathAndQuery = pathAndQuery
    }

    /// The Identity Cloud token URL for a tenant: `{base_url}/{customer_id}/login/token`.
    public init(baseURL: String, customerID: String) throws(Problem) {
        var base = Substring(baseURL)
        while base.hasSuffix("/") { base = base.dropLast() }
        try self.init(parsing: "\(base)/\(customerID)/login/token")
    }

    /// Whether a host name or address is the local machine: `localhost`, `127.0.0.0/8` or `::1`.
    public static func isLoopback(_ host: String) -> Bool {
        // Only the exact name `localhost`: a name under `.localhost` is sent to DNS by a resolver
        // configured `hosts: files dns`, and could resolve anywhere.
        if host == "localhost" || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4, octets.allSatisfy({ UInt8($0) != nil }) else { return false }
        return octets[0] == "127"
    }
}
