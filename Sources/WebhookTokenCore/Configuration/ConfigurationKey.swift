/// One key of `config.toml`: where it lives, what it means, its default and how its effective
/// value is printed.
///
/// ``ConfigurationKey/all`` is the one table of the configuration's keys. The unknown-key check,
/// `--check-config`'s rendering, the README's and the man page's reference are all made from it,
/// and a test sets every key to a wrong value to prove the parser reads it — so a key cannot be
/// accepted and silently ignored, documented and not parsed, or parsed and not documented.
public struct ConfigurationKey: Sendable {
    /// The tables of the file. Those that are ``isPerProfile`` may also appear per profile, as
    /// `[profiles.NAME.endpoint]` and so on.
    public enum Table: String, Sendable, CaseIterable {
        case endpoint, credentials, socket, renewal, access, proxy, logging, sink, hook

        /// Whether a profile can have its own table of this kind.
        public var isPerProfile: Bool {
            switch self {
            case .endpoint, .credentials, .renewal, .access, .proxy: return true
            case .socket, .logging, .sink, .hook: return false
            }
        }

        /// Whether `profile` has this table at all (`[proxy]` is optional; absent, it is not rendered).
        func isPresent(in profile: Configuration.Profile) -> Bool {
            self != .proxy || profile.proxy != nil
        }

        /// Whether the table is an array of tables (`[[sink]]`), one element per thing.
        public var isArray: Bool {
            self == .sink || self == .hook
        }

        /// What the table is for, one line.
        public var summary: String {
            switch self {
            case .endpoint: return "where tokens come from"
            case .credentials: return "who the daemon is to the token endpoint"
            case .socket: return "where and to whom tokens are served"
            case .renewal:
                return "when tokens are renewed, retried and served; per profile, key by key over the top-level table"
            case .access:
                return "who may ask, beyond the socket's permissions; a profile's table replaces the top-level one"
            case .proxy:
                return "optional: a socket on which API calls are made with the profile's token added by the daemon "
                    + "(the top-level table is the default profile's)"
            case .logging: return "what the daemon logs"
            case .sink: return "one per file a token is written to, while it is servable (see File sinks)"
            case .hook: return "one per command run after each new token (see Renewal hooks)"
            }
        }
    }

    public let table: Table
    public let name: String
    /// The default, as it would be written in the file; `nil` when there is none (required, or
    /// absent means something — see `summary`).
    public let defaultValue: String?
    /// What the key means, one or two sentences.
    public let summary: String
    /// The effective value of this key as TOML (`nil`: not set and no default to show; a text
    /// starting with `#` is a whole comment line standing for it).
    let render: @Sendable (ConfigurationKey.Values) -> String?

    /// The values a key renders from: the profile (for per-profile tables) and the shared tables.
    struct Values {
        var profile: Configuration.Profile
        var socket: Configuration.Socket
        var logging: Configuration.Logging
        var sink: Configuration.Sink?
        var hook: Configuration.Hook?
    }

    /// The keys of `table`, in the table's order.
    public static func keys(of table: Table) -> [ConfigurationKey] {
        all.filter { $0.table == table }
    }

    /// The key names of `table`, for the unknown-key check.
    public static func names(of table: Table) -> [String] {
        keys(of: table).map(\.name)
    }
}

extension ConfigurationKey {
    private static let renewal = RenewalPolicy()
    private static let socket = Configuration.Socket()

    /// Every key of the configuration file.
    public static let all: [ConfigurationKey] = [
        // [endpoint]
        .init(
            table: .endpoint, name: "base_url", defaultValue: nil,
            summary:
                "Identity Cloud: the API's base URL; with customer_id the token URL is {base_url}/{customer_id}/login/token.",
            render: { _ in nil }),
        .init(
            table: .endpoint, name: "customer_id", defaultValue: nil,
            summary: "Identity Cloud: the customer id (letters, digits and dashes).", render: { _ in nil }),
        .init(
            table: .endpoint, name: "token_url", defaultValue: nil,
            summary:
                "Any RFC 6749 token endpoint, instead of base_url and customer_id. https only, except to loopback.",
            render: { quoted($0.profile.endpoint.tokenURL.description) }),
        .init(
            table: .endpoint, name: "scope", defaultValue: quoted(Configuration.Endpoint.defaultScope),
            summary: "The scope requested; every space-separated value must be granted.",
            render: { quoted($0.profile.endpoint.scope) }),
        .init(
            table: .endpoint, name: "ca_file", defaultValue: nil,
            summary: "An extra PEM trust root for the endpoint's certificate (the system roots otherwise).",
            render: { $0.profile.endpoint.caFile.map(quoted) }),
        .init(
            table: .endpoint, name: "timeout", defaultValue: duration(Configuration.Endpoint.defaultTimeout),
            summary: "The longest one token request may take, connect to last byte.",
            render: { duration($0.profile.endpoint.timeout) }),
        // [credentials]
        .init(
            table: .credentials, name: "client_id", defaultValue: nil, summary: "The client's id (required).",
            render: { quoted($0.profile.credentials.clientID) }),
        .init(
            table: .credentials, name: "client_secret_file", defaultValue: nil,
            summary: "A file holding the secret, owned by root or the daemon's user, readable by nobody else.",
            render: {
                if case .file(let path) = $0.profile.credentials.secretSource { return quoted(path) }
                return nil
            }),
        .init(
            table: .credentials, name: "client_secret", defaultValue: nil,
            summary:
                "The secret inline; only in a configuration file private to its owner. Without either, the systemd "
                + "credential client-secret (client-secret-NAME for a profile) is used.",
            render: {
                switch $0.profile.credentials.secretSource {
                case .inline: return quoted("<redacted>")
                case .systemdCredential(let name):
                    return "# client secret: systemd credential \"\(name)\" in $CREDENTIALS_DIRECTORY"
                case .file: return nil
                }
            }),
        // [socket]
        .init(
            table: .socket, name: "path", defaultValue: quoted(Configuration.Socket.defaultPath),
            summary: "Where tokens are served (at most 107 bytes).", render: { quoted($0.socket.path) }),
        .init(
            table: .socket, name: "mode", defaultValue: octal(Configuration.Socket.defaultMode),
            summary: "The socket file's permissions, an octal string.", render: { octal($0.socket.mode) }),
        .init(
            table: .socket, name: "group", defaultValue: nil,
            summary: "The socket file's group, by name or id (the daemon's own group otherwise).",
            render: { $0.socket.group.map(quoted) }),
        .init(
            table: .socket, name: "max_connections", defaultValue: String(socket.maximumConnections),
            summary: "More open connections are answered 503 and closed.",
            render: { String($0.socket.maximumConnections) }),
        .init(
            table: .socket, name: "max_connections_per_user", defaultValue: nil,
            summary: "One user's share of max_connections (a quarter of it by default), so that no local process "
                + "can lock the others out.",
            render: {
                guard let setting = $0.socket.maximumConnectionsPerUserSetting else {
                    return
                        "# max_connections_per_user = \($0.socket.maximumConnectionsPerUser)   (a quarter of max_connections)"
                }
                return String(setting)
            }),
        .init(
            table: .socket, name: "header_timeout", defaultValue: duration(socket.headerTimeout),
            summary: "A request head must be complete this long after its first byte (else 408).",
            render: { duration($0.socket.headerTimeout) }),
        .init(
            table: .socket, name: "idle_timeout", defaultValue: duration(socket.idleTimeout),
            summary: "A kept-alive connection idle this long is closed.", render: { duration($0.socket.idleTimeout) }),
        // [renewal]
        .init(
            table: .renewal, name: "renew_at_remaining", defaultValue: String(renewal.renewAtRemainingFraction),
            summary: "Renew when this fraction of the lifetime remains (0.15 to 0.9).",
            render: { String($0.profile.renewal.renewAtRemainingFraction) }),
        .init(
            table: .renewal, name: "jitter", defaultValue: String(renewal.jitterFraction),
            summary: "Renew up to this fraction of the lifetime earlier, at random (0 to 0.5).",
            render: { String($0.profile.renewal.jitterFraction) }),
        .init(
            table: .renewal, name: "min_remaining_life", defaultValue: duration(renewal.minimumRemainingLife),
            summary: "Serve a token only with this much life left (a tenth of the lifetime for short ones).",
            render: { duration($0.profile.renewal.minimumRemainingLife) }),
        .init(
            table: .renewal, name: "retry_initial", defaultValue: duration(renewal.retryInitial),
            summary: "The first retry after a failed request; doubling from there, ±50 % jitter.",
            render: { duration($0.profile.renewal.retryInitial) }),
        .init(
            table: .renewal, name: "retry_max", defaultValue: duration(renewal.retryMaximum),
            summary: "The longest retry delay after transient errors.",
            render: { duration($0.profile.renewal.retryMaximum) }),
        .init(
            table: .renewal, name: "retry_max_permanent", defaultValue: duration(renewal.retryMaximumPermanent),
            summary: "The longest retry delay after permanent errors (invalid_client, insufficient_scope, ...).",
            render: { duration($0.profile.renewal.retryMaximumPermanent) }),
        .init(
            table: .renewal, name: "retry_after_max", defaultValue: duration(renewal.retryAfterMaximum),
            summary: "The longest Retry-After from the endpoint that is honoured.",
            render: { duration($0.profile.renewal.retryAfterMaximum) }),
        .init(
            table: .renewal, name: "refresh_min_interval", defaultValue: duration(renewal.refreshMinimumInterval),
            summary: "A consumer's refresh starts at most one request per this interval.",
            render: { duration($0.profile.renewal.refreshMinimumInterval) }),
        .init(
            table: .renewal, name: "refresh_min_interval_per_user",
            defaultValue: duration(renewal.refreshMinimumIntervalPerUser),
            summary: "... and at most one per this interval on behalf of any one user.",
            render: { duration($0.profile.renewal.refreshMinimumIntervalPerUser) }),
        // [access]
        .init(
            table: .access, name: "allowed_users", defaultValue: "[]",
            summary: "Only these users (names or ids, by SO_PEERCRED) get tokens; with allowed_groups empty too, "
                + "anyone who can open the socket.",
            render: { principals($0.profile.access.allowedUsers) }),
        .init(
            table: .access, name: "allowed_groups", defaultValue: "[]",
            summary: "... and members of these groups (primary or supplementary).",
            render: { principals($0.profile.access.allowedGroups) }),
        // [proxy]
        .init(
            table: .proxy, name: "socket", defaultValue: nil,
            summary: "Where consumers send their API requests (required; at most 107 bytes); created with [socket]'s "
                + "mode and group, guarded by the profile's [access].",
            render: { $0.profile.proxy.map { quoted($0.socketPath) } }),
        .init(
            table: .proxy, name: "upstream", defaultValue: nil,
            summary: "The origin requests go to, https://host[:port] (http only to loopback); the origin of the "
                + "profile's base_url or token_url by default. Never anywhere a consumer names.",
            render: { $0.profile.proxy.map { quoted($0.upstreamOrigin) } }),
        .init(
            table: .proxy, name: "allowed_path_prefixes", defaultValue: "[]",
            summary: "Only paths starting with one of these go upstream (403 path_not_allowed otherwise); empty: "
                + "every path.",
            render: { $0.profile.proxy.map { "[" + $0.allowedPathPrefixes.map(quoted).joined(separator: ", ") + "]" } }),
        .init(
            table: .proxy, name: "max_request_body",
            defaultValue: quoted(ByteSizeSyntax.format(Configuration.Proxy.defaultMaximumRequestBody)),
            summary: "The largest request body kept, to replay the request after a 401/403; a larger one goes "
                + "upstream as it arrives and is not replayed.",
            render: { $0.profile.proxy.map { quoted(ByteSizeSyntax.format($0.maximumRequestBody)) } }),
        .init(
            table: .proxy, name: "timeout", defaultValue: duration(Configuration.Proxy.defaultTimeout),
            summary: "The longest one upstream exchange may take, connect to last byte (504 upstream_timeout).",
            render: { $0.profile.proxy.map { duration($0.timeout) } }),
        // [logging]
        .init(
            table: .logging, name: "level", defaultValue: quoted(Configuration.Logging().level),
            summary: "One of \(Configuration.Logging.levels.joined(separator: ", ")).",
            render: { quoted($0.logging.level) }),
        // [[sink]]
        .init(
            table: .sink, name: "profile", defaultValue: nil,
            summary: "The profile whose token is written; may be omitted when there is one profile.",
            render: { $0.sink.map { quoted($0.profile) } }),
        .init(
            table: .sink, name: "path", defaultValue: nil,
            summary:
                "The file (required); on tmpfs or ramfs, in a directory owned by root or the daemon and not writable by others.",
            render: { $0.sink.map { quoted($0.path) } }),
        .init(
            table: .sink, name: "format", defaultValue: quoted(Configuration.Sink.Format.raw.rawValue),
            summary: "One of \(Configuration.Sink.Format.allCases.map(\.rawValue).joined(separator: ", ")).",
            render: { $0.sink.map { quoted($0.format.rawValue) } }),
        .init(
            table: .sink, name: "mode", defaultValue: octal(Configuration.Sink.defaultMode),
            summary: "The file's permissions, an octal string.", render: { $0.sink.map { octal($0.mode) } }),
        .init(
            table: .sink, name: "group", defaultValue: nil,
            summary: "The file's group, by name or id (the daemon's own group otherwise).",
            render: { $0.sink?.group.map(quoted) }),
        .init(
            table: .sink, name: "allow_persistent_storage", defaultValue: "false",
            summary: "Allow a file system other than tmpfs or ramfs (the token then reaches a disk).",
            render: { $0.sink.map { $0.allowPersistentStorage ? "true" : "false" } }),
        // [[hook]]
        .init(
            table: .hook, name: "profile", defaultValue: nil,
            summary: "The profile whose new tokens run the command; may be omitted when there is one profile.",
            render: { $0.hook.map { quoted($0.profile) } }),
        .init(
            table: .hook, name: "command", defaultValue: nil,
            summary: "The program (an absolute path) and its arguments, as an array; no shell (required).",
            render: { $0.hook.map { "[" + $0.command.map(quoted).joined(separator: ", ") + "]" } }),
        .init(
            table: .hook, name: "timeout", defaultValue: duration(Configuration.Hook.defaultTimeout),
            summary: "A run still going after this long has its process group killed.",
            render: { $0.hook.map { duration($0.timeout) } }),
        .init(
            table: .hook, name: "stdin", defaultValue: quoted(Configuration.Hook.Input.none.rawValue),
            summary: "\"token\" writes the token to the command's standard input (never to its argv or environment).",
            render: { $0.hook.map { quoted($0.stdin.rawValue) } }),
    ]

    static func quoted(_ text: String) -> String { "\"" + JSONText.escaped(text) + "\"" }

    static func duration(_ value: Duration) -> String { quoted(DurationSyntax.format(value)) }

    /// Four octal digits, as the parser requires three or four: `"0\(octal)"` rendered mode 0o7
    /// as "07", which the parser refuses (found by ConfigurationParserFuzzTests).
    static func octal(_ mode: UInt32) -> String {
        let digits = String(mode, radix: 8)
        return quoted(String(repeating: "0", count: max(0, 4 - digits.count)) + digits)
    }

    static func principals(_ list: [AccessPolicy.Principal]) -> String {
        "["
            + list.map { principal in
                switch principal {
                case .name(let name): return quoted(name)
                case .id(let id): return String(id)
                }
            }.joined(separator: ", ") + "]"
    }
}

extension ConfigurationKey {
    /// The configuration reference as Markdown tables, one per table: the README's, kept equal to
    /// this by a test.
    public static func referenceMarkdown() -> String {
        var text = ""
        for table in Table.allCases {
            let scope =
                table.isPerProfile
                ? "`[\(table.rawValue)]`, or `[profiles.NAME.\(table.rawValue)]`"
                : table.isArray ? "`[[\(table.rawValue)]]`" : "`[\(table.rawValue)]`"
            text += "\(scope): \(table.summary).\n\n| key | default | meaning |\n|---|---|---|\n"
            for key in keys(of: table) {
                let value = key.defaultValue.map { "`\($0)`" } ?? "—"
                text += "| `\(key.name)` | \(value) | \(key.summary.replacingPipes) |\n"
            }
            text += "\n"
        }
        return text
    }
}

extension String {
    /// A table cell cannot hold a raw `|`.
    fileprivate var replacingPipes: String {
        var result = ""
        for character in self { result += character == "|" ? "\\|" : String(character) }
        return result
    }
}
