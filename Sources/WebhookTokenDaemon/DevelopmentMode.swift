import TokenEndpointEmulator
import WebhookTokenCore

#if canImport(Glibc)
    import Glibc
#endif

/// The quick-start set-up: a token-endpoint emulator on loopback, a random client secret, and the
/// socket in a private temporary directory — so a newcomer sees the daemon work without Identity
/// Cloud credentials.
enum DevelopmentMode {
    struct Setup {
        let loaded: LoadedConfiguration
        let emulator: TokenEndpointEmulator
        let socketDirectory: String?
    }

    static func start(options: DaemonOptions) async throws -> Setup {
        let secret = TokenEndpointEmulator.randomToken()
        let clientID = "dev-client"
        let emulator = TokenEndpointEmulator(
            options: .init(
                clientID: clientID, clientSecret: secret, expiresIn: options.developmentTokenLifetime))
        let port = try await emulator.start(host: "127.0.0.1", port: 0)

        var socketDirectory: String?
        let socketPath: String
        if let path = options.socketPath {
            socketPath = path
        } else {
            var template = Array("/tmp/webhook-tokend-dev-XXXXXX".utf8CString)
            guard let directory = mkdtemp(&template) else {
                throw SocketDirectoryError()
            }
            socketDirectory = String(cString: directory)
            socketPath = "\(socketDirectory!)/token.sock"
        }
        let tokenURL = try TokenURL(baseURL: "http://127.0.0.1:\(port)", customerID: "dev-customer")
        // One emulated client serves every dev profile; each asks for a scope of its own, so that
        // their tokens are told apart in `webhook-token status`.
        let profiles = options.developmentProfiles.enumerated().map { index, name in
            Configuration.Profile(
                name: name,
                endpoint: .init(
                    tokenURL: tokenURL, scope: index == 0 ? Configuration.Endpoint.defaultScope : "\(name):**",
                    timeout: .seconds(5)),
                credentials: .init(clientID: clientID, secretSource: .inline(ClientSecret(secret))),
                renewal: RenewalPolicy(minimumRemainingLife: .seconds(5)), access: AccessPolicy())
        }
        let configuration = Configuration(
            profiles: profiles, socket: .init(path: socketPath, mode: 0o600),
            logging: .init(level: options.logLevel ?? "info"))
        let loaded = LoadedConfiguration(
            configuration: configuration,
            secrets: Dictionary(
                uniqueKeysWithValues: profiles.map {
                    ($0.name, .init(secret: ClientSecret(secret), origin: "generated for dev mode"))
                }),
            path: "(dev mode)")
        return Setup(loaded: loaded, emulator: emulator, socketDirectory: socketDirectory)
    }

    struct SocketDirectoryError: Error, CustomStringConvertible {
        var description: String { "cannot create a temporary directory for the dev-mode socket" }
    }
}
