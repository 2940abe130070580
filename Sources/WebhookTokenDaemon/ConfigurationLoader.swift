public import WebhookTokenCore

#if canImport(Glibc)
    import Glibc
#endif

/// A configuration together with the secrets it points to: everything the daemon needs to run.
public struct LoadedConfiguration: Sendable {
    public var configuration: Configuration
    /// Each profile's secret, by profile name.
    public var secrets: [String: LoadedSecret]
    public var path: String

    /// A client secret and where it came from (for `--check-config` and logs; never the secret).
    public struct LoadedSecret: Sendable {
        public var secret: ClientSecret
        public var origin: String

        public init(secret: ClientSecret, origin: String) {
            self.secret = secret
            self.origin = origin
        }
    }

    public init(configuration: Configuration, secrets: [String: LoadedSecret], path: String) {
        self.configuration = configuration
        self.secrets = secrets
        self.path = path
    }

    /// The token request of `profile`.
    public func tokenRequest(for profile: Configuration.Profile) -> TokenRequest {
        TokenRequest(
            endpoint: profile.endpoint, clientID: profile.credentials.clientID,
            secret: secrets[profile.name]?.secret ?? ClientSecret(""))
    }
}

/// Reads `config.toml` and the client secrets from disk, with the safety checks that need the
/// file system: files owned by anyone but root or the daemon's user, or writable by group or
/// others, are refused (anyone who could write them could point the daemon elsewhere), an inline
/// secret needs a config file private to its owner, and exactly one secret source must resolve
/// for every profile.
public enum ConfigurationLoader {
    /// The largest configuration or secret file read.
    static let maximumFileSize = 1 << 20

    /// - Parameter checkOnly: for `--check-config` run outside the unit, where systemd's
    ///   credentials do not exist: a secret expected from a systemd credential is then reported as
    ///   not checked instead of missing.
    public static func load(path: String, environment: [String: String], checkOnly: Bool = false)
        throws(ConfigurationError) -> LoadedConfiguration
    {
        let (text, mode) = try readProtectedFile(path, configFile: path, role: "configuration file")
        let configuration = try ConfigurationParser.parse(text, file: path)
        var secrets: [String: LoadedConfiguration.LoadedSecret] = [:]
        for profile in configuration.profiles {
            secrets[profile.name] = try loadSecret(
                of: profile, configFile: path, configMode: mode, environment: environment, checkOnly: checkOnly)
        }
        let sinkIssues = configuration.sinks.enumerated().compactMap { index, sink in
            SinkLocation.problem(with: sink).map {
                ConfigurationError.Issue(file: path, key: "sink[\(index + 1)].path", problem: .file($0))
            }
        }
        if !sinkIssues.isEmpty { throw ConfigurationError(issues: sinkIssues) }
        return LoadedConfiguration(configuration: configuration, secrets: secrets, path: path)
    }

    private static func loadSecret(
        of profile: Configuration.Profile, configFile path: String, configMode mode: mode_t,
        environment: [String: String], checkOnly: Bool
    ) throws(ConfigurationError) -> LoadedConfiguration.LoadedSecret {
        let table =
            profile.name == Configuration.Profile.defaultName ? "credentials" : "profiles.\(profile.name).credentials"
        func problem(_ key: String?, _ text: String) -> ConfigurationError {
            ConfigurationError(.init(file: path, key: key.map { "\(table).\($0)" } ?? table, problem: .file(text)))
        }
        let credentialName = Configuration.Profile.credentialName(profile: profile.name)
        let credentialPath = environment["CREDENTIALS_DIRECTORY"].map { "\($0)/\(credentialName)" }
        let credentialExists = credentialPath.map { access($0, F_OK) == 0 } ?? false

        switch profile.credentials.secretSource {
        case .inline(let secret):
            if mode & 0o077 != 0 {
                throw problem(
                    "client_secret",
                    "an inline client_secret is refused because \(path) is accessible by group or others (mode \(octal(mode))); run chmod 600 \(path), or move the secret to client_secret_file or a systemd credential"
                )
            }
            if credentialExists {
                throw problem(
                    "client_secret",
                    "both client_secret and the systemd credential \(credentialName) are present; exactly one secret source must be used"
                )
            }
            return .init(secret: secret, origin: "client_secret in \(path)")
        case .file(let secretPath):
            if credentialExists {
                throw problem(
                    "client_secret_file",
                    "both client_secret_file and the systemd credential \(credentialName) are present; exactly one secret source must be used (under systemd, drop client_secret_file and use LoadCredential=)"
                )
            }
            let (contents, _) = try readProtectedFile(
                secretPath, configFile: path, role: "client secret file", key: "\(table).client_secret_file",
                refuseGroupOrOtherReadable: true)
            let secret = try nonEmpty(
                ClientSecret(fileContents: contents), origin: secretPath, configFile: path, key: table)
            return .init(secret: secret, origin: "file \(secretPath)")
        case .systemdCredential(let name):
            if checkOnly && environment["CREDENTIALS_DIRECTORY"] == nil {
                return .init(
                    secret: ClientSecret(""),
                    origin:
                        "systemd credential \(name) (not checked: $CREDENTIALS_DIRECTORY is set only inside the unit)")
            }
            guard let credentialPath, credentialExists else {
                throw problem(
                    nil,
                    "no client secret: set client_secret_file (or client_secret) in [\(table)], or pass the systemd credential \(name) (LoadCredential=\(name):/etc/webhook-tokend/\(name))"
                )
            }
            // systemd makes credentials read-only and private to the service: no mode checks apply.
            let (contents, _) = try readProtectedFile(
                credentialPath, configFile: path, role: "systemd credential", key: table, checkMode: false)
            let secret = try nonEmpty(
                ClientSecret(fileContents: contents), origin: credentialPath, configFile: path, key: table)
            return .init(secret: secret, origin: "systemd credential \(name)")
        }
    }

    private static func nonEmpty(_ secret: ClientSecret, origin: String, configFile: String, key: String)
        throws(ConfigurationError) -> ClientSecret
    {
        guard !secret.revealed.isEmpty else {
            throw ConfigurationError(
                .init(file: configFile, key: key, problem: .file("the client secret in \(origin) is empty")))
        }
        return secret
    }

    /// Reads a small regular file, refusing one that is owned by anyone but root or the daemon's
    /// user, or writable by group or others (and, for a secret, readable by them).
    static func readProtectedFile(
        _ path: String, configFile: String, role: String, key: String? = nil, checkMode: Bool = true,
        refuseGroupOrOtherReadable: Bool = false
    ) throws(ConfigurationError) -> (String, mode_t) {
        func fail(_ text: String) -> ConfigurationError {
            ConfigurationError(.init(file: configFile, key: key, problem: .file(text)))
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else {
            throw fail("cannot open the \(role) \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw fail("cannot stat the \(role) \(path): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else { throw fail("the \(role) \(path) is not a regular file") }
        let mode = info.st_mode & 0o7777
        // Whoever owns a file can rewrite it: only root and the daemon's own user may.
        if checkMode && info.st_uid != 0 && info.st_uid != geteuid() {
            throw fail(
                "the \(role) \(path) is owned by uid \(info.st_uid), neither root nor the daemon's user (uid \(geteuid())); refusing it — run chown root \(path)"
            )
        }
        if checkMode && mode & 0o022 != 0 {
            throw fail(
                "the \(role) \(path) is writable by group or others (mode \(octal(mode))); refusing it — run chmod go-w \(path)"
            )
        }
        // A secret readable by the file's group is readable by every consumer when that group is
        // the socket's (the unit's Group=webhook-token): only its owner may read it.
        if checkMode && refuseGroupOrOtherReadable && mode & 0o044 != 0 {
            throw fail(
                "the \(role) \(path) is readable by group or others (mode \(octal(mode))); refusing it — run chmod 600 \(path)"
            )
        }
        guard Int(info.st_size) <= maximumFileSize else { throw fail("the \(role) \(path) is larger than 1 MiB") }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size) + 1)
        var total = 0
        while total < bytes.count {
            let count = bytes[total...].withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw fail("cannot read the \(role) \(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            total += count
        }
        guard let text = String(validating: bytes[..<total], as: UTF8.self) else {
            throw fail("the \(role) \(path) is not valid UTF-8")
        }
        return (text, mode)
    }

    static func octal(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
