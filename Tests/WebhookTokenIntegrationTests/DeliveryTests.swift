import Foundation
import Testing
import TokenEndpointEmulator

/// A directory for sinks on tmpfs, owned by root and not writable by others, as the daemon requires.
func makeSinkDirectory() throws -> TemporaryDirectory {
    var template = Array("/dev/shm/wtsink.XXXXXX".utf8CString)
    guard let pointer = mkdtemp(&template) else { throw TestFailure("mkdtemp under /dev/shm failed") }
    let path = String(cString: pointer)
    chmod(path, 0o755)
    return TemporaryDirectory(path: path)
}

func fileIdentity(_ path: String) -> (inode: UInt64, mtime: Int)? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return (UInt64(info.st_ino), info.st_mtim.tv_sec * 1_000_000_000 + info.st_mtim.tv_nsec)
}

/// Consumers that are handed tokens: sink files, renewal hooks, long-polls and `watch`.
@Suite("Sinks, hooks and change notification", .serialized)
struct DeliveryTests {
    // MARK: - Sinks

    @Test func aReaderHammeringASinkNeverSeesAPartialEmptyOrExpiredToken() async throws {
        let sinks = try makeSinkDirectory()
        defer { sinks.remove() }
        let path = sinks.file("webhooks.token")
        let harness = try await DaemonHarness(expiresIn: 2, extraConfig: "[[sink]]\npath = \"\(path)\"\n")
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        let emulator = harness.emulator
        let results = await onThreads(1) { _ -> (reads: Int, tokens: Set<String>, problems: [String]) in
            var reads = 0
            var tokens: Set<String> = []
            var problems: [String] = []
            let end = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < end {
                guard let data = FileManager.default.contents(atPath: path) else { continue }
                reads += 1
                let text = String(decoding: data, as: UTF8.self)
                guard text.hasSuffix("\n"), text.count > 1 else {
                    problems.append("partial or empty: \(text.debugDescription)")
                    continue
                }
                let token = String(text.dropLast())
                tokens.insert(token)
                guard let record = emulator.issuedTokens.first(where: { $0.token == token }) else {
                    problems.append("a token the endpoint never issued")
                    continue
                }
                if ContinuousClock.now >= record.expiresAt {
                    problems.append("expired by \(record.expiresAt.duration(to: .now))")
                }
            }
            return (reads, tokens, problems)
        }
        let result = try #require(results.first)
        #expect(result.problems.isEmpty, "\(result.problems.prefix(3))")
        #expect(result.reads > 1000)
        #expect(result.tokens.count >= 3, "renewals reached the sink")
        #expect(try await harness.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: path), "removed when the daemon stops")
        #expect(harness.leakedSecrets() == [])
    }

    @Test func aSinkIsRewrittenOnlyForANewTokenAndRemovedWhileNoneIsServable() async throws {
        let sinks = try makeSinkDirectory()
        defer { sinks.remove() }
        let path = sinks.file("token")
        let harness = try await DaemonHarness(expiresIn: 2, extraConfig: "[[sink]]\npath = \"\(path)\"\n")
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await eventually("the sink") { FileManager.default.fileExists(atPath: path) }
        // The endpoint answers renewals with the same token: the file must not be touched.
        harness.emulator.setBehavior(.reissueLast)
        let before = try #require(fileIdentity(path))
        let requests = harness.emulator.requestCount
        try await eventually("two renewals") { harness.emulator.requestCount >= requests + 2 }
        let after = try #require(fileIdentity(path))
        #expect(before.inode == after.inode && before.mtime == after.mtime, "rewritten without a new token")

        // An outage past the token's end: the file goes; recovery writes it again.
        harness.emulator.setBehavior(.respond(status: 503, headers: [], body: ""))
        try await eventually("the sink's removal at the end of serving") {
            !FileManager.default.fileExists(atPath: path)
        }
        #expect(try socketRequest(harness.socketPath, "GET", "/v1/token").status == 503)
        harness.emulator.setBehavior(.issue)
        try await eventually("the sink written again") { FileManager.default.fileExists(atPath: path) }
        let newest = try #require(harness.emulator.issuedTokens.last?.token)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == newest + "\n")
        #expect(try await harness.stop() == 0)
    }

    @Test func everyFormatReadsBackAndTheFileHasItsModeAndGroupAndReplacesALink() async throws {
        let sinks = try makeSinkDirectory()
        defer { sinks.remove() }
        let victim = try sinks.write("victim", "precious\n", mode: 0o600)
        symlink(victim, sinks.file("raw"))
        let config = ["raw", "header", "json", "env"].map { format in
            "[[sink]]\npath = \"\(sinks.file(format))\"\nformat = \"\(format)\"\nmode = \"0640\"\ngroup = \"daemon\"\n"
        }.joined()
        let harness = try await DaemonHarness(expiresIn: 600, extraConfig: config)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        let token = try #require(harness.emulator.issuedTokens.last?.token)
        try await eventually("the sinks") { FileManager.default.fileExists(atPath: sinks.file("env")) }

        #expect(try String(contentsOfFile: sinks.file("raw"), encoding: .utf8) == token + "\n")
        #expect(
            try String(contentsOfFile: victim, encoding: .utf8) == "precious\n", "the link was replaced, not followed")
        #expect(try String(contentsOfFile: sinks.file("header"), encoding: .utf8) == "Authorization: Bearer \(token)\n")
        let json = try #require(jsonObject(try String(contentsOfFile: sinks.file("json"), encoding: .utf8)))
        #expect(json["access_token"] as? String == token)
        #expect(json["fingerprint"] as? String != nil)
        let sourced = try await Shell.run(
            "/bin/sh",
            [
                "-c", ". \"$1\"; printf '%s|%s' \"$WEBHOOK_TOKEN\" \"$WEBHOOK_TOKEN_EXPIRES_AT\"", "sh",
                sinks.file("env"),
            ])
        #expect(sourced.standardOutput.hasPrefix(token + "|"), "\(sourced)")
        #expect(sourced.standardOutput.hasSuffix("Z"))
        for format in ["raw", "header", "json", "env"] {
            var info = stat()
            lstat(sinks.file(format), &info)
            #expect(info.st_mode & S_IFMT == S_IFREG)
            #expect(info.st_mode & 0o777 == 0o640, "\(format)")
            #expect(info.st_gid == 1, "\(format): the group daemon")
        }
        #expect(try await harness.stop() == 0)
    }

    @Test func unsafeSinkLocationsAreRefusedByTheCheck() async throws {
        let directory = try TemporaryDirectory.make(prefix: "wtsk")
        defer { directory.remove() }
        let shm = try makeSinkDirectory()
        defer { shm.remove() }
        chown(shm.path, 65534, 65534)
        func check(_ sink: String) async throws -> Shell.Result {
            let config = try directory.write(
                "config.toml",
                """
                [endpoint]
                token_url = "https://idp.example/token"
                [credentials]
                client_id = "c"
                client_secret = "s"
                [[sink]]
                \(sink)
                """, mode: 0o600)
            return try await Shell.run(Binaries.daemon, ["--check-config", "--config", config], environment: [:])
        }
        let disk = try await check("path = \"\(directory.file("token"))\"")
        #expect(disk.status == 78)
        #expect(disk.standardError.contains("is not on tmpfs or ramfs"), "\(disk.standardError)")
        #expect(try await check("path = \"\(directory.file("token"))\"\nallow_persistent_storage = true").status == 0)
        let shared = try await check("path = \"/dev/shm/token\"")
        #expect(shared.standardError.contains("is writable by others"), "\(shared.standardError)")
        let foreign = try await check("path = \"\(shm.file("token"))\"")
        #expect(foreign.standardError.contains("owned by uid 65534"), "\(foreign.standardError)")
        let group = try await check(
            "path = \"\(directory.file("token"))\"\nallow_persistent_storage = true\ngroup = \"no-such-group-xyz\"")
        #expect(group.standardError.contains(#"the group "no-such-group-xyz" does not exist"#))
    }

    // MARK: - Hooks

    @Test func aHookGetsTheEnvironmentAndTheTokenOnStandardInputOnly() async throws {
        let sinks = try makeSinkDirectory()
        defer { sinks.remove() }
        let out = sinks.file("hook.out")
        let script =
            #"{ env; echo "ARGS $0 $*"; echo "STDIN $(cat)"; tr '\0' '\n' < /proc/$$/environ; } > "$0.tmp"; mv "$0.tmp" "$0""#
        let harness = try await DaemonHarness(
            expiresIn: 600,
            extraConfig: """
                [[sink]]
                path = "\(sinks.file("token"))"
                [[hook]]
                command = ["/bin/sh", "-c", '''\(script)''', "\(out)"]
                stdin = "token"
                """)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        let token = try #require(harness.emulator.issuedTokens.last?.token)
        try await eventually("the hook's output") { FileManager.default.fileExists(atPath: out) }
        let text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(text.contains("WEBHOOK_TOKEN_PROFILE=default"))
        #expect(text.contains("WEBHOOK_TOKEN_SINK=\(sinks.file("token"))"))
        #expect(text.contains("WEBHOOK_TOKEN_EXPIRES_AT="))
        #expect(text.contains("WEBHOOK_TOKEN_FINGERPRINT="))
        #expect(text.contains("STDIN \(token)"))
        #expect(text.components(separatedBy: token).count == 2, "the token only on standard input:\n\(text)")
        #expect(!text.contains("CREDENTIALS_DIRECTORY"), "a clean environment")
        try await eventually("the hook's log line") { harness.log().contains("Renewal hook ran") }
        #expect(try await harness.stop() == 0)
        #expect(harness.leakedSecrets() == [])
    }

    /// A hook slower than the tokens: one run at a time, runs coalesced, each killed at its
    /// timeout, and serving untouched throughout.
    @Test func aHangingHookIsKilledCoalescedAndHarmsNothing() async throws {
        let sinks = try makeSinkDirectory()
        defer { sinks.remove() }
        let log = sinks.file("runs")
        let harness = try await DaemonHarness(
            expiresIn: 1,
            extraConfig: """
                [[hook]]
                command = ["/bin/sh", "-c", "echo start >> \(log); sleep 30; echo end >> \(log)"]
                timeout = "1s"
                """)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        let auditor = TokenAuditor(socketPath: harness.socketPath, emulator: harness.emulator)
        try await Task.sleep(for: .seconds(4))
        let report = await auditor.stop()
        #expect(report.violations == [])
        #expect(report.refused == 0, "a hanging hook never delays serving or renewal")
        let runs = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        let starts = runs.components(separatedBy: "start").count - 1
        let tokens = harness.emulator.issuedTokens.count
        #expect(tokens >= 5, "renewals went on (every ~0.55 s): \(tokens)")
        #expect(starts >= 2 && starts <= 5, "one run at a time, coalesced: \(starts) runs for \(tokens) tokens")
        #expect(!runs.contains("end"), "each run killed at its timeout")
        #expect(harness.log().contains("timed out and was killed"))
        let metrics = try socketRequest(harness.socketPath, "GET", "/metrics").body
        #expect(metrics.contains(#"webhook_tokend_hook_runs_total{profile="default",result="timeout"}"#))
        #expect(try await harness.stop() == 0)
        // No hook process is left behind.
        #expect(try await Shell.run("/usr/bin/pgrep", ["-f", "sleep 30; echo end >> \(log)"]).status == 1)
    }

    @Test func aFailingHookIsLoggedAndCounted() async throws {
        let harness = try await DaemonHarness(
            expiresIn: 600,
            extraConfig: """
                [[hook]]
                command = ["/bin/sh", "-c", "echo went wrong; exit 3"]
                """)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        try await eventually("the failure in the log") { harness.log().contains("Renewal hook exited with status 3") }
        #expect(harness.log().contains("hook.output=went wrong"))
        #expect(try socketRequest(harness.socketPath, "GET", "/v1/token").status == 200)
        #expect(try await harness.stop() == 0)
    }

    // MARK: - Change notification

    @Test func aLongPollAnswersOnANewTokenOrWhenItsWaitRunsOut() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        let first = try socketRequest(harness.socketPath, "GET", "/v1/token?format=raw")
        let fingerprint = try #require(first.header("X-Webhook-Tokend-Fingerprint"))
        #expect(fingerprint.count == 8)

        // A different fingerprint: at once.
        var started = ContinuousClock.now
        #expect(
            try await socketRequestOnOwnThread(harness.socketPath, "GET", "/v1/token?after=00000000&wait=30&format=raw")
                .body == first.body)
        #expect(started.duration(to: .now) < .seconds(1))
        // The same, and no new token: after the wait, with the current one.
        started = ContinuousClock.now
        let waited = try await socketRequestOnOwnThread(
            harness.socketPath, "GET", "/v1/token?after=\(fingerprint)&wait=1&format=raw")
        #expect(waited.body == first.body)
        #expect(started.duration(to: .now) >= .milliseconds(900))
        #expect(try socketRequest(harness.socketPath, "GET", "/v1/token?wait=301").status == 400)

        // Many waiters, one new token: all answered with it at once.
        let waiters = try (0..<50).map { _ in try SocketConnection(path: harness.socketPath, timeout: .seconds(20)) }
        for waiter in waiters {
            try waiter.send(
                "GET /v1/tokens/default?after=\(fingerprint)&wait=60&format=raw HTTP/1.1\r\nHost: x\r\n\r\n")
        }
        try await Task.sleep(for: .milliseconds(1100))  // past refresh_min_interval
        let refreshed = try await socketRequestOnOwnThread(harness.socketPath, "POST", "/v1/token/refresh?format=raw")
        for waiter in waiters {
            let answer = try waiter.readResponse()
            #expect(answer.body == refreshed.body)
            #expect(answer.header("X-Webhook-Tokend-Fingerprint") != fingerprint)
        }

        // Waiting at shutdown: answered at once.
        let newest = try #require(refreshed.header("X-Webhook-Tokend-Fingerprint"))
        let last = try SocketConnection(path: harness.socketPath, timeout: .seconds(20))
        try last.send("GET /v1/token?after=\(newest)&wait=60 HTTP/1.1\r\nHost: x\r\n\r\n")
        try await Task.sleep(for: .milliseconds(200))
        started = ContinuousClock.now
        #expect(try await harness.stop() == 0)
        #expect(try last.readResponse().header("X-Webhook-Tokend-Error") == "shutting_down")
        #expect(started.duration(to: .now) < .seconds(2))
    }

    @Test func watchPrintsEachNewTokenAcrossARestart() async throws {
        let harness = try await DaemonHarness(expiresIn: 2)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        let output = try OutputCollector()
        let watch = try ChildProcess(
            Binaries.client, ["--socket", harness.socketPath, "watch"], environment: [:], stdout: output.writeEnd,
            stderr: output.writeEnd)
        output.closeWriteEnd()
        defer { kill(watch.processIdentifier, SIGKILL) }
        try await eventually("two tokens") { output.text.split(separator: "\n").count >= 2 }
        _ = try await harness.stop()
        try await harness.launch()
        try await harness.waitForToken()
        let afterRestart = try #require(harness.emulator.issuedTokens.last?.token)
        try await eventually(timeout: .seconds(15), "the restarted daemon's token") {
            output.text.contains(afterRestart)
        }
        let lines = output.text.split(separator: "\n").map(String.init)
        #expect(Set(lines).count == lines.count, "each token once")
        let issued = Set(harness.emulator.issuedTokens.map(\.token))
        #expect(lines.allSatisfy(issued.contains), "\(lines)")
        #expect(watch.isRunning)
    }
}
