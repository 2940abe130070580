import Foundation
import TokenEndpointEmulator

/// A real `webhook-tokend` process against a real HTTPS token endpoint (the emulator, with a
/// throwaway CA), with its socket, configuration and secret in a private temporary directory.
final class DaemonHarness: @unchecked Sendable {
    let directory: TemporaryDirectory
    let emulator: TokenEndpointEmulator
    let port: Int
    let clientID = "test-client@example"
    /// Every character class that form-urlencoding before base64 must get right.
    let secret = "s3cr+t/=:%&?# é"
    var socketPath: String { directory.file("token.sock") }
    var configPath: String { directory.file("config.toml") }
    private(set) var process: ChildProcess?
    let endpointTimeout: String
    let certificates: TestCertificates
    /// The output of every process this harness started, in order.
    private let collectors = LockedArray<OutputCollector>()

    /// - Parameters:
    ///   - expiresIn: lifetime of issued tokens, seconds (a few seconds make renewals observable).
    ///   - renewal: extra lines for the `[renewal]` table.
    ///   - endpointTimeout: `[endpoint] timeout`, a duration string.
    init(
        expiresIn: Int = 3, renewal: String = "", socket: String = "", extraConfig: String = "",
        endpointTimeout: String = "2s"
    ) async throws {
        self.endpointTimeout = endpointTimeout
        directory = try TemporaryDirectory.make(prefix: "wt")
        let certificates = await TestCertificates.shared
        self.certificates = certificates
        emulator = TokenEndpointEmulator(
            options: .init(
                clientID: clientID, clientSecret: secret, expiresIn: expiresIn,
                tls: (certificates.serverCertificate, certificates.serverKey)))
        port = try await emulator.start()
        _ = try directory.write("client-secret", secret + "\n", mode: 0o600)
        try writeConfig(renewal: renewal, socket: socket, extra: extraConfig)
    }

    func writeConfig(renewal: String = "", socket: String = "", extra: String = "", clientSecretFile: String? = nil)
        throws
    {
        let config = """
            [endpoint]
            base_url = "https://127.0.0.1:\(port)"
            customer_id = "test-customer"
            ca_file = "\(certificates.caCertificate)"
            timeout = "\(endpointTimeout)"

            [credentials]
            client_id = "\(clientID)"
            client_secret_file = "\(clientSecretFile ?? directory.file("client-secret"))"

            [socket]
            path = "\(socketPath)"
            mode = "0666"
            \(socket)

            [renewal]
            retry_initial = "100ms"
            retry_max = "500ms"
            retry_max_permanent = "1s"
            refresh_min_interval = "1s"
            \(renewal)

            \(extra)
            """
        _ = try directory.write("config.toml", config, mode: 0o600)
    }

    /// A configuration of named profiles only (in `extra`), with the harness's socket and renewal.
    func writeConfigWithoutDefaultProfile(extra: String) throws {
        let config = """
            [socket]
            path = "\(socketPath)"
            mode = "0666"

            [renewal]
            retry_initial = "100ms"
            retry_max = "500ms"
            retry_max_permanent = "1s"
            refresh_min_interval = "1s"

            \(extra)
            """
        _ = try directory.write("config.toml", config, mode: 0o600)
    }

    /// Starts the daemon; waits for its socket (not for a token).
    @discardableResult
    func launch(arguments: [String] = [], environment: [String: String] = [:], waitForSocket: Bool = true) async throws
        -> ChildProcess
    {
        var env = ChildProcess.environmentWithoutSystemd
        env.merge(environment, uniquingKeysWith: { $1 })
        let process = try spawn(
            Binaries.daemon, ["--config", configPath, "--log-level", "debug"] + arguments, environment: env)
        self.process = process
        if waitForSocket {
            try await eventually("the daemon's socket at \(socketPath)") {
                guard process.isRunning else {
                    throw TestFailure("daemon exited (\(process.terminationStatus)): \(self.log())")
                }
                return (try? SocketConnection(path: self.socketPath)) != nil
            }
        }
        return process
    }

    /// Starts a process whose stdout and stderr go to ``log()``.
    func spawn(_ executable: String, _ arguments: [String], environment: [String: String]) throws -> ChildProcess {
        let collector = try OutputCollector()
        collectors.withLock { $0.append(collector) }
        defer { collector.closeWriteEnd() }
        return try ChildProcess(
            executable, arguments, environment: environment, stdout: collector.writeEnd, stderr: collector.writeEnd)
    }

    /// Waits until the daemon serves a token. (Until the first fetch ends, the daemon holds a
    /// token request open.)
    func waitForToken(timeout: Duration = .seconds(10)) async throws {
        try await eventually(timeout: timeout, "a token on \(socketPath)") {
            (try? await socketRequestOnOwnThread(self.socketPath, "GET", "/v1/token").status) == 200
        }
    }

    /// SIGTERM, and the exit status.
    func stop() async throws -> Int32 {
        guard let process else { return -1 }
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        try await eventually("the daemon to exit") { !process.isRunning }
        return process.terminationStatus
    }

    /// Waits for the process to exit by itself; its status.
    func waitForExit(timeout: Duration = .seconds(10)) async throws -> Int32 {
        guard let process else { return -1 }
        try await eventually(timeout: timeout, "the daemon to exit by itself") { !process.isRunning }
        return process.terminationStatus
    }

    func log() -> String {
        collectors.withLock { $0.map(\.text).joined() }
    }

    /// Runs the client binary against this daemon.
    func client(_ arguments: [String], environment: [String: String] = [:]) async throws -> Shell.Result {
        try await Shell.run(Binaries.client, ["--socket", socketPath] + arguments, environment: environment)
    }

    /// Runs the client binary as another user (`setpriv`), with only the groups given.
    func client(asUser user: String, group: String? = nil, groups: [String] = [], _ arguments: [String] = [])
        async throws -> Shell.Result
    {
        let primary = group ?? (user == "nobody" ? "nogroup" : user)
        let supplementary = groups.isEmpty ? "--clear-groups" : "--groups=\(groups.joined(separator: ","))"
        return try await Shell.run(
            "/usr/bin/setpriv",
            ["--reuid=\(user)", "--regid=\(primary)", supplementary, Binaries.client, "--socket", socketPath]
                + arguments)
    }

    /// Waits until the only open connection is the one asking (the start-up probes have closed).
    func waitForIdleConnections() async throws {
        try await eventually("the start-up connections to close") {
            let metrics = try socketRequest(self.socketPath, "GET", "/metrics").body
            return MetricsEndpointTests.value(metrics, "webhook_tokend_open_connections") == 1
        }
    }

    /// Asserts that neither the secret nor any issued token reached the daemon's output.
    func leakedSecrets() -> [String] {
        let text = log()
        var leaks: [String] = []
        if text.contains(secret) { leaks.append("client secret") }
        for record in emulator.issuedTokens where text.contains(record.token) {
            leaks.append("token \(record.token.prefix(6))…")
        }
        return leaks
    }

    func cleanup() async {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            await process.waitForExit()
        }
        await emulator.shutdown()
        directory.remove()
    }
}

/// An array behind a lock, shared with reader threads.
final class LockedArray<Element>: @unchecked Sendable {
    private let lock = NSLock()
    private var elements: [Element] = []

    func withLock<T>(_ body: (inout [Element]) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&elements)
    }
}
