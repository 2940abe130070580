import Foundation
import Testing
import TokenEndpointEmulator

/// The authenticating proxy: consumers call the (stand-in) webhooks API through the profile's
/// proxy socket and never hold the token — against the real daemon and the HTTPS emulator.
@Suite("Proxy", .serialized)
struct ProxyTests {
    static let subscriptions = "/test-customer/webhooks/subscriptions"

    /// A daemon with a long-lived token and a `[proxy]` socket (`proxyLines` added to its table).
    static func launch(proxyLines: String = "", extra: String = "") async throws -> DaemonHarness {
        let harness = try await DaemonHarness(expiresIn: 600)
        try harness.writeConfig(extra: "[proxy]\nsocket = \"\(harness.proxyPath)\"\n\(proxyLines)\n\(extra)")
        try await harness.launch()
        try await harness.waitForToken()
        try await eventually("the proxy socket") { (try? SocketConnection(path: harness.proxyPath)) != nil }
        return harness
    }

    @Test func getAndPostGoUpstreamWithTheProfilesTokenAndNotTheConsumersCredentials() async throws {
        let harness = try await Self.launch()
        defer { Task { await harness.cleanup() } }
        let token = try #require(harness.emulator.issuedTokens.last?.token)
        let connection = try SocketConnection(path: harness.proxyPath)
        let get = try connection.request(
            "GET", Self.subscriptions + "?page=1",
            headers: [
                "Authorization": "Bearer consumer-own", "Cookie": "session=1", "Proxy-Authorization": "Basic eA==",
                "X-Request-Id": "r1",
            ])
        #expect(get.status == 200, "\(get.body)")
        #expect(get.body == #"{"subscriptions":[]}"#)
        let body = #"{"url":"https://hooks.example/in","events":["entityUpdated"]}"#
        try connection.send(
            "POST \(Self.subscriptions) HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                + "Authorization: Bearer consumer-own\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let post = try connection.readResponse()
        #expect(post.status == 201, "\(post.body)")
        #expect(post.body == #"{"id":"sub-1","received":\#(body)}"#)

        // A consumer that waits for 100 Continue before its body (curl does, for a while) gets it.
        try connection.send(
            "POST \(Self.subscriptions) HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\r\n")
        #expect(try connection.readResponse().status == 100)
        try connection.send(body)
        #expect(try connection.readResponse().status == 201)

        let received = harness.emulator.webhooksAPI.received.prefix(2)
        try #require(received.count == 2)
        #expect(received.allSatisfy { $0.bearerToken == token && $0.accepted })
        #expect(received.allSatisfy { $0.header("Authorization") == ["Bearer \(token)"] }, "only the daemon's token")
        #expect(received.first?.target == Self.subscriptions + "?page=1")
        #expect(received[0].header("Cookie").isEmpty && received[0].header("Proxy-Authorization").isEmpty)
        #expect(received[0].header("X-Request-Id") == ["r1"], "other headers pass through")
        #expect(received[0].header("Host") == ["127.0.0.1:\(harness.port)"], "Host is the upstream's")
        #expect(received[1].method == "POST" && received[1].body == Array(body.utf8))
        #expect(received[1].header("Content-Type") == ["application/json"])
        #expect(harness.leakedSecrets().isEmpty, "\(harness.leakedSecrets())")
        // The access log, at debug level (written after the answer, read from a pipe: eventually).
        try await eventually("the access log line") { harness.log().contains("Proxied request") }
        #expect(try await harness.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: harness.proxyPath), "the proxy socket is removed")
    }

    @Test func aTokenEndedEarlyIsRefreshedOnceAndTheRequestReplayed() async throws {
        let harness = try await Self.launch()
        defer { Task { await harness.cleanup() } }
        let first = try #require(harness.emulator.issuedTokens.last?.token)
        try await Task.sleep(for: .milliseconds(1100))  // past refresh_min_interval since the first fetch
        let tokenRequests = harness.emulator.requestCount
        harness.emulator.webhooksAPI.endEarly(token: first)

        let body = #"{"url":"https://hooks.example/in"}"#
        let connection = try SocketConnection(path: harness.proxyPath)
        try connection.send(
            "POST \(Self.subscriptions) HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        )
        let post = try await onOwnThread { try connection.readResponse() }  // a refresh, then the replay
        #expect(post.status == 201, "the consumer never sees the 403: \(post.body)")
        #expect(harness.emulator.requestCount == tokenRequests + 1, "one token request")
        let second = try #require(harness.emulator.issuedTokens.last?.token)
        #expect(second != first)
        let received = harness.emulator.webhooksAPI.received
        #expect(received.map(\.bearerToken) == [first, second])
        #expect(received.map(\.accepted) == [false, true])
        #expect(received.allSatisfy { $0.body == Array(body.utf8) }, "the body is replayed")
        let metrics = try socketRequest(harness.socketPath, "GET", "/metrics").body
        #expect(metrics.contains(#"webhook_tokend_proxy_replays_total{profile="default"} 1"#), "\(metrics)")

        // A token the daemon cannot replace (the refresh is rate-limited): the 403 is passed back, once.
        harness.emulator.webhooksAPI.endEarly(token: second)
        let refused = try connection.request("GET", Self.subscriptions)
        #expect(refused.status == 403)
        #expect(refused.header("X-Webhook-Tokend-Error") == nil, "the API's own answer")
        #expect(harness.emulator.webhooksAPI.received.count == 3, "no replay without a new token")
        #expect(try await harness.stop() == 0)
    }

    @Test func manyConsumersAfterAnEarlyEndCauseOneTokenRequest() async throws {
        let harness = try await Self.launch()
        defer { Task { await harness.cleanup() } }
        let first = try #require(harness.emulator.issuedTokens.last?.token)
        try await Task.sleep(for: .milliseconds(1100))
        let tokenRequests = harness.emulator.requestCount
        harness.emulator.webhooksAPI.endEarly(token: first)
        let path = harness.proxyPath
        let statuses = await onThreads(40) { _ in
            (try? socketRequest(path, "GET", Self.subscriptions).status) ?? -1
        }
        #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")
        #expect(harness.emulator.requestCount == tokenRequests + 1, "a single refresh for all of them")
        #expect(try await harness.stop() == 0)
    }

    @Test func absoluteFormConnectAndPathsOutsideThePrefixesAreRefused() async throws {
        let harness = try await Self.launch(proxyLines: #"allowed_path_prefixes = ["/test-customer/webhooks/"]"#)
        defer { Task { await harness.cleanup() } }
        let absolute = try socketRequest(harness.proxyPath, "GET", "https://evil.example/test-customer/webhooks/x")
        #expect(absolute.status == 400)
        #expect(absolute.header("X-Webhook-Tokend-Error") == "target_not_allowed")
        let connect = try socketRequest(harness.proxyPath, "CONNECT", "evil.example:443")
        #expect(connect.status == 405)
        #expect(connect.header("X-Webhook-Tokend-Error") == "method_not_allowed")
        let outside = try socketRequest(harness.proxyPath, "GET", "/test-customer/login/token")
        #expect(outside.status == 403)
        #expect(outside.header("X-Webhook-Tokend-Error") == "path_not_allowed")
        #expect(jsonObject(outside.body)?["error"] as? String == "path_not_allowed")
        #expect(harness.emulator.webhooksAPI.received.isEmpty, "nothing went upstream")
        #expect(try socketRequest(harness.proxyPath, "GET", Self.subscriptions).status == 200)
        #expect(try await harness.stop() == 0)
    }

    @Test func aBodyOverMaxRequestBodyStreamsUpstreamAndIsNotReplayed() async throws {
        let harness = try await Self.launch(proxyLines: #"max_request_body = "64KiB""#)
        defer { Task { await harness.cleanup() } }
        let uploads = "/test-customer/webhooks/uploads"
        let path = harness.proxyPath
        // (Megabytes upstream, or a refresh and a replay: on a thread of their own.)
        func post(_ size: Int) async throws -> SocketConnection.Response {
            try await onOwnThread {
                let connection = try SocketConnection(path: path)
                try connection.send("POST \(uploads) HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(size)\r\n\r\n")
                try connection.send(String(repeating: "b", count: size))
                return try connection.readResponse()
            }
        }
        let large = try await post(2 * 1024 * 1024)
        #expect(large.status == 201, "\(large.body)")
        #expect(large.body == #"{"bytes":2097152}"#)
        #expect(large.header("Connection") == "close", "the connection is not reused after a streamed body")

        let first = try #require(harness.emulator.issuedTokens.last?.token)
        try await Task.sleep(for: .milliseconds(1100))
        harness.emulator.webhooksAPI.endEarly(token: first)
        let tokenRequests = harness.emulator.requestCount
        #expect(try await post(200 * 1024).status == 403, "a body that was not kept cannot be replayed")
        #expect(harness.emulator.webhooksAPI.received.count == 2)
        #expect(harness.emulator.requestCount == tokenRequests)
        #expect(try await post(1024).status == 201, "a small one is replayed with a fresh token")
        #expect(try await harness.stop() == 0)
    }

    @Test func aLargeResponseStreamsThroughWithBoundedMemory() async throws {
        let harness = try await Self.launch()
        defer { Task { await harness.cleanup() } }
        let pid = try #require(harness.process?.processIdentifier)
        // Warm up the upstream connection and the allocator with a small one first.
        #expect(try socketRequest(harness.proxyPath, "GET", "/test-customer/webhooks/large?bytes=65536").status == 200)
        let before = try Self.peakResidentKiB(pid)
        let size = 5 * 1024 * 1024
        let connection = try SocketConnection(path: harness.proxyPath)
        try connection.send("GET /test-customer/webhooks/large?bytes=\(size) HTTP/1.1\r\nHost: localhost\r\n\r\n")
        // A slow consumer: the daemon must wait for it, not read the whole answer into memory.
        try await Task.sleep(for: .seconds(1))
        let response = try await onOwnThread { try connection.readResponse() }  // 5 MiB: a while
        #expect(response.status == 200)
        #expect(response.body.utf8.count == size)
        let growth = try Self.peakResidentKiB(pid) - before
        #expect(growth < 3 * 1024, "the daemon's peak memory grew by \(growth) KiB for a 5 MiB answer")
        #expect(try await harness.stop() == 0)
    }

    @Test func aConsumerThatStopsReadingIsDisconnectedWhenTheTimeoutPasses() async throws {
        let harness = try await Self.launch(proxyLines: #"timeout = "1s""#)
        defer { Task { await harness.cleanup() } }
        let connection = try SocketConnection(path: harness.proxyPath)
        let size = 64 * 1024 * 1024
        try connection.send("GET /test-customer/webhooks/large?bytes=\(size) HTTP/1.1\r\nHost: localhost\r\n\r\n")
        // It reads nothing: the answer fills the socket's buffers and the daemon's write waits.
        // The exchange's timeout ends it, and the connection with it.
        try await eventually(timeout: .seconds(8), "the stalled proxy connection to be closed") {
            let metrics = try socketRequest(harness.socketPath, "GET", "/metrics").body
            return MetricsEndpointTests.value(metrics, "webhook_tokend_open_connections") == 1
        }
        #expect(try await harness.stop() == 0)
        withExtendedLifetime(connection) {}
    }

    @Test func anUpstreamHangingOrDownIsA504OrA502WhileTheTokenSocketKeepsServing() async throws {
        let harness = try await Self.launch(proxyLines: #"timeout = "1s""#)
        defer { Task { await harness.cleanup() } }
        harness.emulator.webhooksAPI.setBehavior(.hang)
        let started = ContinuousClock.now
        let hanging = try await socketRequestOnOwnThread(harness.proxyPath, "GET", Self.subscriptions)
        #expect(hanging.status == 504)
        #expect(hanging.header("X-Webhook-Tokend-Error") == "upstream_timeout")
        #expect(started.duration(to: .now) < .seconds(5))
        #expect(try socketRequest(harness.socketPath, "GET", "/v1/token").status == 200)

        await harness.emulator.shutdown()
        let down = try socketRequest(harness.proxyPath, "GET", Self.subscriptions)
        #expect(down.status == 502, "\(down.body)")
        #expect(down.header("X-Webhook-Tokend-Error") == "upstream_unreachable")
        #expect(jsonObject(down.body)?["detail"] as? String != nil)
        #expect(try socketRequest(harness.socketPath, "GET", "/v1/token").status == 200)
        let metrics = try socketRequest(harness.socketPath, "GET", "/metrics").body
        #expect(
            metrics.contains(#"webhook_tokend_proxy_errors_total{profile="default",code="upstream_unreachable"} 1"#)
                || metrics.contains(
                    #"webhook_tokend_proxy_errors_total{code="upstream_unreachable",profile="default"} 1"#),
            "\(metrics)")
        #expect(try await harness.stop() == 0)
    }

    @Test func slowAndIdleConsumersAreTimedOutAsOnTheTokenSocket() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        try harness.writeConfig(
            socket: #"header_timeout = "400ms"\#nidle_timeout = "400ms""#,
            extra: "[proxy]\nsocket = \"\(harness.proxyPath)\"\n")
        try await harness.launch()
        try await harness.waitForToken()
        try await eventually("the proxy socket") { (try? SocketConnection(path: harness.proxyPath)) != nil }
        // Slowloris: a head that never completes gets 408 and is closed.
        let slow = try SocketConnection(path: harness.proxyPath)
        try slow.send("GET \(Self.subscriptions) HTTP/1.1\r\nHost: x\r\n")
        let timedOut = try await onOwnThread { try slow.readResponse() }
        #expect(timedOut.status == 408)
        #expect(await onOwnThread { slow.isClosedByPeer() })
        // A kept-alive connection left idle after its answer is closed without a word.
        let idle = try SocketConnection(path: harness.proxyPath)
        #expect(try idle.request("GET", Self.subscriptions).status == 200)
        #expect(await onOwnThread { idle.isClosedByPeer() })
        #expect(try await harness.stop() == 0)
    }

    @Test func theProxySocketFollowsItsOwnProfilesAccessRule() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        let hostedLogin = try await SecondEndpoint(harness: harness)
        defer { Task { await hostedLogin.emulator.shutdown() } }
        // nobody may use hosted-login (so it gets through the token socket's door), not "default".
        try harness.writeConfig(
            extra: "[access]\nallowed_users = [0]\n[proxy]\nsocket = \"\(harness.proxyPath)\"\n"
                + hostedLogin.config(access: "allowed_users = [\"nobody\"]"))
        try await harness.launch()
        try await harness.waitForToken()
        try await eventually("the proxy socket") { (try? SocketConnection(path: harness.proxyPath)) != nil }
        func curl(as user: String?) async throws -> Shell.Result {
            let curl = [
                "/usr/bin/curl", "-s", "-i", "--unix-socket", harness.proxyPath,
                "http://localhost\(Self.subscriptions)",
            ]
            guard let user else { return try await Shell.run(curl[0], Array(curl.dropFirst())) }
            return try await Shell.run(
                "/usr/bin/setpriv", ["--reuid=\(user)", "--regid=nogroup", "--clear-groups"] + curl)
        }
        let asRoot = try await curl(as: nil)
        #expect(asRoot.standardOutput.hasPrefix("HTTP/1.1 200"), "\(asRoot.standardOutput)")
        let asNobody = try await curl(as: "nobody")
        #expect(
            asNobody.standardOutput.hasPrefix("HTTP/1.1 403"), "\(asNobody.standardOutput)\(asNobody.standardError)")
        #expect(asNobody.standardOutput.contains("peer_not_allowed"))
        #expect(harness.emulator.webhooksAPI.received.count == 1, "only root's request went upstream")
        #expect(try await harness.stop() == 0)
    }

    @Test func underSocketActivationTheProxySocketIsMatchedByItsPath() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        try harness.writeConfig(extra: "[proxy]\nsocket = \"\(harness.proxyPath)\"\n")
        // The proxy's ListenStream= first: the daemon must tell the sockets apart by path, not order.
        let process = try harness.spawn(
            SocketActivationTests.activate,
            [
                "-l", harness.proxyPath, "-l", harness.socketPath, Binaries.daemon, "--config", harness.configPath,
                "--log-level", "debug",
            ],
            environment: ChildProcess.environmentWithoutSystemd)
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        try await eventually("a token on the passed token socket") {
            (try? await socketRequestOnOwnThread(harness.socketPath, "GET", "/v1/token").status) == 200
        }
        let response = try socketRequest(harness.proxyPath, "GET", Self.subscriptions)
        #expect(response.status == 200, "\(response.body)\n\(harness.log())")
        #expect(harness.emulator.webhooksAPI.received.count == 1)
        kill(process.processIdentifier, SIGTERM)
        try await eventually("the daemon to exit") { !process.isRunning }
        #expect(process.terminationStatus == 0, "\(harness.log())")
        #expect(FileManager.default.fileExists(atPath: harness.proxyPath), "a passed socket is not removed")
    }

    /// The process's peak resident set (`VmHWM`), in KiB.
    static func peakResidentKiB(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") })
        return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
    }
}

extension DaemonHarness {
    var proxyPath: String { directory.file("api.sock") }
}
