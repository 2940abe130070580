import WebhookTokenProtocol

/// The daemon's effective configuration, as read from `config.toml`.
///
/// Every value here has been validated: a `Configuration` that exists is one the daemon can run
/// with. The client secret is *not* part of it — only where to find it (``SecretSource``) — so that
/// a configuration can be printed, compared and logged without any risk of leaking the secret.
public struct Configuration: Sendable, Equatable {
    /// The tokens the daemon holds, one per profile, "default" first, then by name; never empty.
    /// The single-token form's top-level `[endpoint]` and `[credentials]` are the profile "default".
    public var profiles: [Profile]
    public var socket: Socket
    public var logging: Logging
    /// `[[sink]]`: files the tokens are written to, for consumers that read a file.
    public var sinks: [Sink]
    /// `[[hook]]`: commands run after each new token.
    public var hooks: [Hook]

    public init(
        profiles: [Profile], socket: Socket = Socket(), logging: Logging = Logging(), sinks: [Sink] = [],
        hooks: [Hook] = []
    ) {
        precondition(!profiles.isEmpty, "a configuration has at least one profile")
        self.profiles = profiles
        self.socket = socket
        self.logging = logging
        self.sinks = sinks
        self.hooks = hooks
    }

    /// The single-token form: one profile, "default".
    public init(
        endpoint: Endpoint,
        credentials: Credentials,
        socket: Socket = Socket(),
        renewal: RenewalPolicy = RenewalPolicy(),
        access: AccessPolicy = AccessPolicy(),
        logging: Logging = Logging()
    ) {
        self.init(
            profiles: [
                Profile(
                    name: Profile.defaultName, endpoint: endpoint, credentials: credentials, renewal: renewal,
                    access: access)
            ],
            socket: socket, logging: logging)
    }

    public func profile(named name: String) -> Profile? {
        profiles.first { $0.name == name }
    }

    /// One token: where it comes from, with which credentials, on which schedule, for whom.
    public struct Profile: Sendable, Equatable {
        public var name: String
        public var endpoint: Endpoint
        public var credentials: Credentials
        public var renewal: RenewalPolicy
        public var access: AccessPolicy
        /// `[proxy]`: the profile's authenticating proxy socket, if it has one.
        public var proxy: Proxy?

        /// The profile of the single-token form, and the one `/v1/token` serves when there are several.
        public static let defaultName = "default"

        public init(
            name: String, endpoint: Endpoint, credentials: Credentials, renewal: RenewalPolicy, access: AccessPolicy,
            proxy: Proxy? = nil
        ) {
            self.name = name
            self.endpoint = endpoint
            self.credentials = credentials
            self.renewal = renewal
            self.access = access
            self.proxy = proxy
        }

        /// `[a-z0-9][a-z0-9-]{0,62}`: usable in a URL path, a metric label and a credential name.
        public static func isValidName(_ name: String) -> Bool {
            guard let first = name.utf8.first, name.utf8.count <= 63 else { return false }
            func allowed(_ byte: UInt8) -> Bool { (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) }
            return allowed(first) && name.utf8.allSatisfy { allowed($0) || $0 == UInt8(ascii: "-") }
        }

        /// The systemd credential holding the secret when the configuration names none.
        public static func credentialName(profile: String) -> String {
            profile == defaultName ? SecretSource.credentialName : "\(SecretSource.credentialName)-\(profile)"
        }
    }

    /// The default location of the configuration file.
    public static let defaultPath = "/etc/webhook-tokend/config.toml"

    /// `[endpoint]`: where tokens come from.
    public struct Endpoint: Sendable, Equatable {
        /// The full token URL: `{base_url}/{customer_id}/login/token`, or `token_url` as given.
        public var tokenURL: TokenURL
        /// The scope requested with every token (`scope` in the form body).
        public var scope: String
        /// An extra PEM trust root for the endpoint's TLS certificate (system roots otherwise).
        public var caFile: String?
        /// The longest a single token request may take, connect to last byte.
        public var timeout: Duration

        public static let defaultScope = "*:webhooks/**"
        public static let defaultTimeout = Duration.seconds(15)

        public init(
            tokenURL: TokenURL, scope: String = defaultScope, caFile: String? = nil, timeout: Duration = defaultTimeout
        ) {
            self.tokenURL = tokenURL
            self.scope = scope
            self.caFile = caFile
            self.timeout = timeout
        }
    }

    /// `[credentials]`: who the daemon is to the token endpoint.
    public struct Credentials: Sendable, Equatable {
        public var clientID: String
        public var secretSource: SecretSource

        public init(clientID: String, secretSource: SecretSource) {
            self.clientID = clientID
            self.secretSource = secretSource
        }
    }

    /// `[socket]`: where and to whom the token is served.
    public struct Socket: Sendable, Equatable {
        public var path: String
        /// Permission bits of the socket file (`mode = "0660"`).
        public var mode: UInt32
        /// Group owning the socket file, by name or numeric id; `nil` leaves the daemon's group.
        public var group: String?
        /// Connections beyond this are answered 503 and closed (`max_connections = 4096`).
        public var maximumConnections: Int
        /// One user's connections beyond this are answered 503 and closed, so that one local
        /// process cannot lock the others out (`max_connections_per_user`; unset: a quarter of
        /// `max_connections`, 1024 by default — a burst of one user well under the global limit is
        /// still served in full).
        public var maximumConnectionsPerUserSetting: Int?
        /// A request head must arrive within this time of its first byte (`header_timeout = "10s"`).
        public var headerTimeout: Duration
        /// A kept-alive connection idle this long is closed (`idle_timeout = "60s"`).
        public var idleTimeout: Duration

        /// The per-user connection limit in force.
        public var maximumConnectionsPerUser: Int {
            maximumConnectionsPerUserSetting ?? max(1, maximumConnections / 4)
        }

        public static let defaultPath = SocketProtocol.defaultSocketPath
        public static let defaultMode: UInt32 = 0o660

        public init(
            path: String = defaultPath, mode: UInt32 = defaultMode, group: String? = nil,
            maximumConnections: Int = 4096,
            maximumConnectionsPerUser: Int? = nil, headerTimeout: Duration = .seconds(10),
            idleTimeout: Duration = .seconds(60)
        ) {
            self.path = path
            self.mode = mode
            self.group = group
            self.maximumConnections = maximumConnections
            self.maximumConnectionsPerUserSetting = maximumConnectionsPerUser
            self.headerTimeout = headerTimeout
            self.idleTimeout = idleTimeout
        }
    }

    /// `[[sink]]`: a file a profile's token is written to while it is servable.
    public struct Sink: Sendable, Equatable {
        public enum Format: String, Sendable, CaseIterable {
            /// The token and a newline.
            case raw
            /// `Authorization: Bearer <token>` and a newline.
            case header
            /// The token JSON, as `GET /v1/token` answers it when written.
            case json
            /// `WEBHOOK_TOKEN=<token>` and `WEBHOOK_TOKEN_EXPIRES_AT=<RFC 3339>`: for systemd's
            /// `EnvironmentFile=` and `sh`'s `.`.
            case env
        }

        public var profile: String
        public var path: String
        public var format: Format
        public var mode: UInt32
        /// The file's group, by name or id; the daemon's own group otherwise.
        public var group: String?
        /// Allow a file system that is not tmpfs or ramfs (the token then reaches a disk).
        public var allowPersistentStorage: Bool

        public static let defaultMode: UInt32 = 0o600

        public init(
            profile: String, path: String, format: Format = .raw, mode: UInt32 = defaultMode, group: String? = nil,
            allowPersistentStorage: Bool = false
        ) {
            self.profile = profile
            self.path = path
            self.format = format
            self.mode = mode
            self.group = group
            self.allowPersistentStorage = allowPersistentStorage
        }
    }

    /// `[[hook]]`: a command run after every new token of a profile is served and its sinks written.
    public struct Hook: Sendable, Equatable {
        public enum Input: String, Sendable, CaseIterable {
            /// `/dev/null`.
            case none
            /// The token and a newline, on standard input (never in argv or the environment).
            case token
        }

        public var profile: String
        /// The program and its arguments: no shell.
        public var command: [String]
        public var timeout: Duration
        public var stdin: Input

        public static let defaultTimeout = Duration.seconds(30)

        public init(profile: String, command: [String], timeout: Duration = defaultTimeout, stdin: Input = .none) {
            self.profile = profile
            self.command = command
            self.timeout = timeout
            self.stdin = stdin
        }
    }

    /// `[logging]`.
    public struct Logging: Sendable, Equatable {
        /// One of trace, debug, info, notice, warning, error, critical.
        public var level: String

        public static let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

        public init(level: String = "info") {
            self.level = level
        }
    }
}

/// Where the client secret comes from. Exactly one source must resolve.
public enum SecretSource: Sendable, Equatable {
    /// `client_secret_file`: a file holding the secret (one trailing newline is stripped).
    case file(path: String)
    /// No secret in the config: the systemd credential `client-secret` in `$CREDENTIALS_DIRECTORY`.
    case systemdCredential(name: String)
    /// `client_secret` inline in the config file, which must then be private to its owner.
    case inline(ClientSecret)

    /// The name of the systemd credential the daemon looks for when the config names no secret.
    public static let credentialName = "client-secret"
}

/// `[access]`: who, beyond the socket's file permissions, may ask for the token.
public struct AccessPolicy: Sendable, Equatable {
    /// User names or numeric ids; empty together with `allowedGroups` means anyone who can open the socket.
    public var allowedUsers: [Principal]
    public var allowedGroups: [Principal]

    public init(allowedUsers: [Principal] = [], allowedGroups: [Principal] = []) {
        self.allowedUsers = allowedUsers
        self.allowedGroups = allowedGroups
    }

    /// A user or group, as named in the configuration.
    public enum Principal: Sendable, Equatable, CustomStringConvertible {
        case name(String)
        case id(UInt32)

        public var description: String {
            switch self {
            case .name(let name): return name
            case .id(let id): return String(id)
            }
        }
    }

    /// Whether any peer that can open the socket is let in.
    public var allowsEveryone: Bool { allowedUsers.isEmpty && allowedGroups.isEmpty }
}
