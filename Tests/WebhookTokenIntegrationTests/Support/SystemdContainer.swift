import Foundation

/// A throwaway systemd booted as PID 1 in a systemd-nspawn container (Tests/systemd/container-harness.sh),
/// with the real units from `systemd/`, test drop-ins, the built binaries, a configuration and a
/// token endpoint emulator unit installed: the daemon as an operator would run it.
final class SystemdContainer: Sendable {
    /// The state directory the harness keeps its files in (on the host).
    let directory: String
    /// The container's PID 1 as the host sees it.
    let pid1: Int32

    // Fixed names inside the container.
    static let socketPath = "/run/webhook-tokend/token.sock"
    static let configPath = "/etc/webhook-tokend/config.toml"
    static let secretPath = "/etc/webhook-tokend/client-secret"
    static let clientID = "test-client"
    static let secret = "container-s3cret"
    static let emulatorPort = 8080
    static let binaries = "/opt/webhook-tokend/bin"

    /// The repository root, from this file's path.
    static let repository: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.path
    }()
    static var harness: String { "\(repository)/Tests/systemd/container-harness.sh" }

    /// Why the container tests cannot run here, or `nil` if they can.
    static let unavailableReason: String? = {
        if getuid() != 0 { return "not root" }
        for tool in ["/usr/bin/systemd-nspawn", "/usr/bin/nsenter", "/usr/bin/unshare", "/bin/systemctl"]
        where access(tool, X_OK) != 0 {
            return "\(tool) is missing (.ci/install-deps installs systemd-container)"
        }
        return nil
    }()

    /// Whether the host can boot the container. Where it cannot, say so loudly; in CI the tests
    /// run anyway, and fail, rather than skip.
    static let testsCanRun: Bool = {
        guard let reason = SystemdContainer.unavailableReason else { return true }
        let inCI = ProcessInfo.processInfo.environment["CI"] != nil
        print(
            """
            ************************************************************************
            SYSTEMD CONTAINER TESTS \(inCI ? "CANNOT RUN (CI: running them to fail)" : "SKIPPED"): \(reason)
            ************************************************************************
            """)
        return inCI
    }()

    init(directory: String, pid1: Int32) {
        self.directory = directory
        self.pid1 = pid1
    }

    /// Boots a container, runs `body`, and tears the container down whatever happens.
    static func with(config: String = SystemdContainer.config(), _ body: (SystemdContainer) async throws -> Void)
        async throws
    {
        let container = try await boot(config: config)
        do {
            try await body(container)
        } catch {
            await container.dumpDiagnostics()
            await container.teardown()
            throw error
        }
        await container.teardown()
    }

    static func boot(config: String) async throws -> SystemdContainer {
        let state = try TemporaryDirectory.make(prefix: "wtc")
        let payload = state.file("payload")
        try writePayload(into: payload, config: config)
        let result = try await Shell.run(
            "/bin/bash", [harness, "boot", state.path, "--bind-ro=\(Binaries.directory):\(binaries)"],
            environment: harnessEnvironment)
        guard result.status == 0, let pid = Int32(result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            _ = try? await Shell.run("/bin/bash", [harness, "teardown", state.path])
            throw TestFailure("container boot failed (\(result.status)): \(result.standardError)")
        }
        let container = SystemdContainer(directory: state.path, pid1: pid)
        // The users and group of the sysusers.d snippet, as systemd-sysusers makes them at boot.
        let sysusers = try await container.run(["systemd-sysusers"])
        guard sysusers.status == 0 else {
            await container.teardown()
            throw TestFailure("systemd-sysusers failed: \(sysusers.standardError)")
        }
        return container
    }

    /// The harness's owner: this test process, so that a crashed test run still tears down.
    private static var harnessEnvironment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["HARNESS_OWNER_PID"] = String(getpid())
        return environment
    }

    func teardown() async {
        let result = try? await Shell.run("/bin/bash", [Self.harness, "teardown", directory])
        if let result, result.status != 0 {
            print("container teardown failed: \(result.standardError)")
        }
    }

    // MARK: - Driving it

    /// Runs a command inside the container (all its namespaces) as root.
    func run(_ command: [String]) async throws -> Shell.Result {
        try await Shell.run(
            "/usr/bin/nsenter", ["-t", String(pid1), "-a", "--"] + command,
            environment: [
                "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0",
                "LANG": "C.UTF-8",
            ])
    }

    /// Runs a command that must succeed; its standard output.
    @discardableResult
    func must(_ command: String...) async throws -> String {
        let result = try await run(command)
        guard result.status == 0 else {
            throw TestFailure(
                "`\(command.joined(separator: " "))` failed (\(result.status)): \(result.standardError)\(result.standardOutput)"
            )
        }
        return result.standardOutput
    }

    func systemctl(_ arguments: String...) async throws -> Shell.Result {
        try await run(["systemctl", "--no-pager"] + arguments)
    }

    /// `systemctl show -p …` as a dictionary.
    func show(
        _ unit: String,
        _ properties: [String] = [
            "ActiveState", "SubState", "StatusText", "NRestarts", "Result", "MainPID", "ExecMainStatus",
        ]
    ) async throws -> [String: String] {
        let output = try await must("systemctl", "show", unit, "-p", properties.joined(separator: ","))
        var values: [String: String] = [:]
        for line in output.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return values
    }

    /// The unit's journal, every field (verbose), or plain messages.
    func journal(_ unit: String, verbose: Bool = false) async throws -> String {
        try await run(["journalctl", "--no-pager", "-u", unit] + (verbose ? ["-o", "verbose"] : [])).standardOutput
    }

    /// A path inside the container, as the host reaches it.
    func hostPath(_ path: String) -> String { "/proc/\(pid1)/root\(path)" }

    /// Replaces a file inside the container.
    func write(_ path: String, _ contents: String, mode: Int = 0o644) throws {
        let target = hostPath(path)
        try contents.write(toFile: target, atomically: false, encoding: .utf8)
        chmod(target, mode_t(mode))
    }

    /// The daemon's `status` as the real client prints it, run inside the container.
    func clientStatus() async throws -> Shell.Result {
        try await run(["webhook-token", "--socket", Self.socketPath, "status"])
    }

    private func dumpDiagnostics() async {
        let status =
            (try? await run([
                "systemctl", "--no-pager", "status", "webhook-tokend.service", "webhook-tokend.socket",
                "token-endpoint.service",
            ]))?.standardOutput ?? ""
        let journal = (try? await run(["journalctl", "--no-pager", "-n", "80"]))?.standardOutput ?? ""
        print("--- container diagnostics ---\n\(status)\n\(journal)\n--- end ---")
    }

    // MARK: - What is installed

    /// The daemon's configuration: the emulator on the container's loopback, the secret from the
    /// systemd credential, short retries.
    static func config(
        scope: String = "*:webhooks/**", clientID: String = SystemdContainer.clientID, extra: String = ""
    ) -> String {
        """
        [endpoint]
        token_url = "http://127.0.0.1:\(emulatorPort)/tenant/login/token"
        scope = "\(scope)"
        timeout = "2s"

        [credentials]
        client_id = "\(clientID)"

        [socket]
        path = "\(socketPath)"
        mode = "0660"
        group = "webhook-token"

        [renewal]
        retry_initial = "200ms"
        retry_max = "1s"
        retry_max_permanent = "1s"
        \(extra)
        """
    }

    private static func writePayload(into root: String, config: String) throws {
        let files = FileManager.default
        func put(_ path: String, _ contents: String, mode: Int = 0o644) throws {
            let target = root + path
            try files.createDirectory(
                atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try contents.write(toFile: target, atomically: false, encoding: .utf8)
            chmod(target, mode_t(mode))
        }
        func shipped(_ name: String) throws -> String {
            try String(contentsOfFile: "\(repository)/systemd/\(name)", encoding: .utf8)
        }
        // The real units and sysusers.d snippet, unchanged.
        try put("/etc/systemd/system/webhook-tokend.service", shipped("webhook-tokend.service"))
        try put("/etc/systemd/system/webhook-tokend.socket", shipped("webhook-tokend.socket"))
        try put("/etc/sysusers.d/webhook-tokend.conf", shipped("webhook-tokend.sysusers"))
        // Test drop-in: a watchdog and restarts fast enough to watch.
        try put(
            "/etc/systemd/system/webhook-tokend.service.d/test.conf",
            """
            [Service]
            WatchdogSec=3s
            RestartSec=1s
            """)
        try put(configPath, config)
        try put(secretPath, secret + "\n", mode: 0o600)
        // The binaries, from the read-only bind of the build directory.
        try files.createDirectory(atPath: root + "/usr/local/bin", withIntermediateDirectories: true)
        for name in ["webhook-tokend", "webhook-token", "token-endpoint-emulator"] {
            try files.createSymbolicLink(
                atPath: "\(root)/usr/local/bin/\(name)", withDestinationPath: "\(binaries)/\(name)")
        }
        // The token endpoint, as a unit of its own on the container's private loopback.
        try put("/etc/token-endpoint/client-secret", secret + "\n", mode: 0o600)
        try put(
            "/etc/systemd/system/token-endpoint.service",
            """
            [Unit]
            Description=Token endpoint emulator for the webhook-tokend tests

            [Service]
            ExecStart=/usr/local/bin/token-endpoint-emulator --host 127.0.0.1 --port \(emulatorPort) --client-id \(clientID) --client-secret-file /etc/token-endpoint/client-secret --expires-in 3600
            """)
        // A consumer as the README describes it: ordered after the daemon, in the socket's group.
        try put(
            "/etc/systemd/system/token-consumer.service",
            """
            [Unit]
            Description=A consumer of the token
            Wants=webhook-tokend.service
            After=webhook-tokend.service

            [Service]
            Type=oneshot
            RemainAfterExit=yes
            DynamicUser=yes
            SupplementaryGroups=webhook-token
            ExecStart=/bin/sh -c '/usr/local/bin/webhook-token --json status && /usr/local/bin/webhook-token >/dev/null'
            """)
    }
}
