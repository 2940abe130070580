import Foundation
import Testing

/// The real units under a real systemd: each test boots a throwaway systemd as PID 1 in a
/// systemd-nspawn container (Tests/systemd/container-harness.sh), installs `systemd/`'s units
/// with a test drop-in (WatchdogSec=3s, RestartSec=1s), the built binaries, a configuration and
/// a token endpoint emulator unit, and asserts from systemd's own view: `systemctl show`, the
/// journal, `systemctl status`.
@Suite(.serialized, .enabled(if: SystemdContainer.testsCanRun))
struct SystemdContainerTests {
    static let tokend = "webhook-tokend.service"
    static let endpoint = "token-endpoint.service"

    /// Starts the endpoint and the daemon and waits for active/running.
    func startBoth(_ container: SystemdContainer) async throws {
        try await container.must("systemctl", "start", Self.endpoint, Self.tokend)
        let state = try await container.show(Self.tokend)
        #expect(state["ActiveState"] == "active" && state["SubState"] == "running", "\(state)")
    }

    @Test(
        "READY=1 only after the first token: active/running then, activating with a reason before; After= consumers wait"
    )
    func readyAfterFirstToken() async throws {
        try await SystemdContainer.with { container in
            // The endpoint is down: the daemon keeps retrying, the unit stays "activating", and a
            // consumer ordered After= it waits.
            try await container.must("systemctl", "start", "--no-block", Self.tokend, "token-consumer.service")
            try await eventually("a STATUS= about the failing first fetch") {
                let state = try await container.show(Self.tokend)
                return state["StatusText"]?.contains("waiting for first token:") == true
                    && state["StatusText"]?.contains("retrying") == true
            }
            try await Task.sleep(for: .seconds(1.5))
            let waiting = try await container.show(Self.tokend)
            #expect(waiting["ActiveState"] == "activating" && waiting["SubState"] == "start", "\(waiting)")
            #expect(
                waiting["StatusText"]?.contains("connection refused") == true
                    || waiting["StatusText"]?.contains("unreachable") == true, "\(waiting)")
            let consumerBefore = try await container.show(
                "token-consumer.service", ["ActiveState", "ExecMainStartTimestampMonotonic"])
            #expect(
                consumerBefore["ActiveState"] == "inactive" && consumerBefore["ExecMainStartTimestampMonotonic"] == "0",
                "\(consumerBefore)")

            // The endpoint comes up: the first token, READY=1, active/running.
            try await container.must("systemctl", "start", Self.endpoint)
            try await eventually("webhook-tokend active/running") {
                try await container.show(Self.tokend)["SubState"] == "running"
            }
            let ready = try await container.show(
                Self.tokend, ["ActiveState", "StatusText", "ActiveEnterTimestampMonotonic"])
            #expect(ready["ActiveState"] == "active")
            #expect(ready["StatusText"]?.hasPrefix("token valid until ") == true, "\(ready)")

            // The consumer ran only after that, as an unprivileged member of webhook-token, and got the token.
            try await eventually("the consumer to finish") {
                let consumer = try await container.show(
                    "token-consumer.service", ["ActiveState", "Result", "ExecMainExitTimestampMonotonic"])
                return consumer["ActiveState"] == "active" || consumer["ActiveState"] == "failed"
            }
            let consumer = try await container.show(
                "token-consumer.service", ["Result", "ExecMainStatus", "ExecMainStartTimestampMonotonic"])
            let consumerLog = try await container.journal("token-consumer.service")
            #expect(consumer["Result"] == "success" && consumer["ExecMainStatus"] == "0", "\(consumer)\n\(consumerLog)")
            let consumerStart = UInt64(consumer["ExecMainStartTimestampMonotonic"] ?? "") ?? 0
            let daemonReady = UInt64(ready["ActiveEnterTimestampMonotonic"] ?? "") ?? .max
            #expect(consumerStart >= daemonReady, "the consumer started before READY=1")

            // Native journal logging, with the stable MESSAGE_ID of "token obtained".
            let obtained = try await container.must(
                "journalctl", "--no-pager", "-o", "verbose", "_SYSTEMD_UNIT=\(Self.tokend)",
                "MESSAGE_ID=5b1e2c0f7f8a4d2e9c3a6b1d0e4f7a21")
            #expect(obtained.contains("TOKEN_FINGERPRINT="), "\(obtained)")
            #expect(!obtained.contains(SystemdContainer.secret))

            // The shipped units verify with the binaries where they point.
            let verify = try await container.run([
                "systemd-analyze", "verify", "/etc/systemd/system/webhook-tokend.service",
                "/etc/systemd/system/webhook-tokend.socket",
            ])
            #expect(verify.status == 0 && verify.standardError.isEmpty, "\(verify.standardError)")
        }
    }

    @Test("a SIGSTOPped daemon is killed and restarted by the watchdog")
    func watchdogRestartsHungDaemon() async throws {
        try await SystemdContainer.with { container in
            try await startBoth(container)
            let before = try await container.show(Self.tokend)
            #expect(before["NRestarts"] == "0")
            let pid = try #require(before["MainPID"])
            try await container.must("kill", "-STOP", pid)

            try await eventually(timeout: .seconds(20), "a restart by the watchdog") {
                let state = try await container.show(Self.tokend)
                return state["NRestarts"] == "1" && state["SubState"] == "running" && state["MainPID"] != pid
            }
            let entries = try await container.must(
                "journalctl", "--no-pager", "-o", "verbose", "UNIT=\(Self.tokend)", "UNIT_RESULT=watchdog")
            #expect(entries.contains("UNIT_RESULT=watchdog"), "no UNIT_RESULT=watchdog in the journal")
            let messages = try await container.journal(Self.tokend)
            #expect(messages.contains("Watchdog timeout"), "\(messages)")
            // And the new instance serves.
            #expect(try await container.clientStatus().status == 0)
        }
    }

    @Test("with webhook-tokend.socket, the first connection starts the daemon and gets a token; the socket outlives it")
    func socketActivation() async throws {
        try await SystemdContainer.with { container in
            try await container.must("systemctl", "start", "webhook-tokend.socket", Self.endpoint)
            #expect(try await container.show(Self.tokend)["ActiveState"] == "inactive")

            // The socket as the .socket unit made it: 0660, group webhook-token.
            let gid = try await container.must("getent", "group", "webhook-token").split(separator: ":")[2]
            var info = stat()
            #expect(lstat(container.hostPath(SystemdContainer.socketPath), &info) == 0)
            #expect(
                info.st_mode & 0o777 == 0o660 && String(info.st_gid) == gid,
                "mode \(String(info.st_mode, radix: 8)) gid \(info.st_gid)")

            // Someone outside the group cannot connect; a member can, and that starts the daemon.
            let outsider = try await container.run([
                "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "webhook-token", "--socket",
                SystemdContainer.socketPath,
            ])
            #expect(outsider.status == 77, "\(outsider.status): \(outsider.standardError)")
            // (The daemon serves from the moment it starts: until its first token arrives, which
            // takes a moment, it answers 503 and the client exits 75, "try again later".)
            let member = [
                "setpriv", "--reuid=65534", "--regid=65534", "--groups=\(gid)", "webhook-token", "--socket",
                SystemdContainer.socketPath,
            ]
            let first = try await container.run(member)
            #expect(
                first.status == 0 || (first.status == 75 && first.standardError.contains("waiting for first token")),
                "\(first.status): \(first.standardError)")
            try await eventually("a token for a member of webhook-token") {
                let result = try await container.run(member)
                return result.status == 0 && result.standardOutput.count > 20
            }
            let state = try await container.show(Self.tokend)
            #expect(state["ActiveState"] == "active" && state["SubState"] == "running", "\(state)")
            #expect(try await container.journal(Self.tokend).contains("Using the socket passed by systemd"))

            // Stopping the service leaves the socket to systemd: the next connection starts it again.
            try await container.must("systemctl", "stop", Self.tokend)
            #expect(
                lstat(container.hostPath(SystemdContainer.socketPath), &info) == 0,
                "the socket file is gone after the service stopped")
            #expect(try await container.show(Self.tokend)["ActiveState"] == "inactive")
            let again = try await container.run(["webhook-token", "--socket", SystemdContainer.socketPath])
            #expect(again.status == 0 || again.status == 75, "\(again.status): \(again.standardError)")
            try await eventually("a token from the restarted daemon") {
                try await container.run(["webhook-token", "--socket", SystemdContainer.socketPath]).status == 0
            }
            #expect(try await container.show(Self.tokend)["SubState"] == "running")
        }
    }

    @Test(
        "systemctl reload keeps serving and applies a changed config; a broken one is rejected and the service stays up"
    )
    func reload() async throws {
        try await SystemdContainer.with { container in
            try await startBoth(container)
            let pid = try await container.show(Self.tokend)["MainPID"]
            let first = try await container.must("webhook-token", "--json")
            #expect(first.contains(#""scope":"*:webhooks/**""#), "\(first)")

            // A changed scope: a fresh fetch, the old token served until the new one arrives.
            try container.write(SystemdContainer.configPath, SystemdContainer.config(scope: "webhooks:reloaded"))
            try await container.must("systemctl", "reload", Self.tokend)
            try await eventually("the token for the new scope") {
                try await container.must("webhook-token", "--json").contains(#""scope":"webhooks:reloaded""#)
            }
            var state = try await container.show(Self.tokend)
            #expect(
                state["ActiveState"] == "active" && state["SubState"] == "running" && state["MainPID"] == pid,
                "\(state)")
            #expect(state["StatusText"]?.hasPrefix("token valid until ") == true, "\(state)")
            let log = try await container.journal(Self.tokend)
            #expect(log.contains("Reloading configuration") && log.contains("Renewed the token"), "\(log)")

            // A broken configuration: rejected, logged, the service keeps running and serving.
            try container.write(SystemdContainer.configPath, "[endpoint]\ntoken_url = 42\n")
            try await container.must("systemctl", "reload", Self.tokend)
            try await eventually("the rejection in the journal") {
                try await container.journal(Self.tokend).contains(
                    "Failed to reload configuration, keeping the current one")
            }
            state = try await container.show(Self.tokend)
            #expect(
                state["ActiveState"] == "active" && state["SubState"] == "running" && state["MainPID"] == pid,
                "\(state)")
            #expect(try await container.must("webhook-token", "--json").contains(#""scope":"webhooks:reloaded""#))
        }
    }

    @Test("systemctl stop is a clean stop: Result=success, the daemon's own socket file removed")
    func cleanStop() async throws {
        try await SystemdContainer.with { container in
            try await startBoth(container)
            var info = stat()
            #expect(lstat(container.hostPath(SystemdContainer.socketPath), &info) == 0)
            try await container.must("systemctl", "stop", Self.tokend)
            let state = try await container.show(Self.tokend)
            #expect(
                state["ActiveState"] == "inactive" && state["Result"] == "success" && state["ExecMainStatus"] == "0",
                "\(state)")
            #expect(
                lstat(container.hostPath(SystemdContainer.socketPath), &info) != 0 && errno == ENOENT,
                "the socket file is left behind")
            #expect(try await container.journal(Self.tokend).contains("Stopped"))
        }
    }

    @Test("a wrong secret leaves the unit failed, with invalid_client in systemctl status")
    func wrongSecret() async throws {
        try await SystemdContainer.with { container in
            try container.write(SystemdContainer.secretPath, "not-the-secret\n", mode: 0o600)
            try await container.must("systemctl", "start", Self.endpoint)
            let start = try await container.systemctl("start", Self.tokend)
            #expect(start.status != 0)
            let state = try await container.show(Self.tokend)
            #expect(
                state["ActiveState"] == "failed" && state["Result"] == "exit-code" && state["ExecMainStatus"] == "78",
                "\(state)")
            #expect(state["NRestarts"] == "0", "a permanent refusal must not restart in a loop")
            let status = try await container.systemctl("status", Self.tokend)
            #expect(status.standardOutput.contains("invalid_client"), "\(status.standardOutput)")
        }
    }
}

/// The shipped unit files and example configurations, checked on the host.
@Suite struct ShippedSystemdFilesTests {
    @Test("systemd-analyze security rates the service unit at most 2.0")
    func securityExposure() async throws {
        let result = try await Shell.run(
            "/usr/bin/systemd-analyze",
            [
                "security", "--offline=yes", "--no-pager",
                "\(SystemdContainer.repository)/systemd/webhook-tokend.service",
            ])
        let line = try #require(
            result.standardOutput.split(separator: "\n").last { $0.contains("Overall exposure level") })
        let score = line.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) }
        let exposure = try #require(score, "\(line)")
        #expect(exposure <= 2.0, "\(line)")
    }

    // Serialized: each case creates and removes the groups the examples name.
    @Test(
        "the example configurations pass --check-config", .serialized,
        arguments: ["config.toml", "config.generic-oauth.toml", "config.multi-profile.toml"])
    func exampleConfigurations(file: String) async throws {
        let directory = try TemporaryDirectory.make(prefix: "wt-cfg")
        defer { directory.remove() }
        // --check-config resolves the names the examples use, as the daemon would at start; the
        // package's sysusers snippet creates this group on a real host.
        var created: [String] = []
        for group in ["webhook-token", "idp-admin"] {
            if try await Shell.run("/usr/sbin/groupadd", ["--system", group]).status == 0 { created.append(group) }
        }
        try await withCleanup {
            for credential in ["client-secret", "client-secret-webhooks", "client-secret-hosted-login"] {
                _ = try directory.write(credential, "example-secret\n", mode: 0o600)
            }
            var environment = ProcessInfo.processInfo.environment
            environment["CREDENTIALS_DIRECTORY"] = directory.path
            let result = try await Shell.run(
                Binaries.daemon, ["--check-config", "--config", "\(SystemdContainer.repository)/config/\(file)"],
                environment: environment)
            #expect(result.status == 0, "\(result.standardError)")
            #expect(result.standardOutput.contains("configuration OK; client secret"))
            #expect(result.standardOutput.contains("from systemd credential client-secret"))
        } cleanup: {
            for group in created { _ = try? await Shell.run("/usr/sbin/groupdel", [group]) }
        }
    }
}
