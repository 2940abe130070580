import Foundation
import Testing
import TokenEndpointEmulator
import WebhookTokenProtocol

/// Hostile and careless local peers, against the real daemon binary: floods, idle hoarders,
/// slow talkers, oversized and malformed requests, abrupt disconnects, and users not allowed in.
@Suite("Socket abuse", .serialized)
struct SocketAbuseTests {
    init() {
        // 1000 client connections need more descriptors than the default soft limit of 1024.
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    @Test func answersAThousandConcurrentClients() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        let token = try #require(harness.emulator.issuedTokens.last?.token)
        let path = harness.socketPath
        // A thousand connections and answers take a while: on a thread of their own.
        let correct = try await onOwnThread {
            var connections: [SocketConnection] = []
            for _ in 0..<1000 { connections.append(try SocketConnection(path: path)) }
            for connection in connections {
                try connection.send("GET /v1/token?format=raw HTTP/1.1\r\nHost: x\r\n\r\n")
            }
            return connections.count { (try? $0.readResponse())?.body == token }
        }
        #expect(correct == 1000)
        #expect(try await harness.stop() == 0)
    }

    @Test func idleConnectionsDoNotDelayAFreshClient() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        var idle: [SocketConnection] = []
        for _ in 0..<200 { idle.append(try SocketConnection(path: harness.socketPath)) }
        for connection in idle.prefix(100) { try connection.send("GET /v1/tok") }  // half a request each
        let started = ContinuousClock.now
        let response = try socketRequest(harness.socketPath, "GET", "/v1/token")
        #expect(response.status == 200)
        #expect(started.duration(to: .now) < .seconds(2))  // "promptly", with margin for a loaded CI machine
        idle.removeAll()
        #expect(try await harness.stop() == 0)
    }

    @Test func closesConnectionsBeyondTheLimitCleanly() async throws {
        let harness = try await DaemonHarness(
            expiresIn: 600, socket: "max_connections = 20\nmax_connections_per_user = 20")
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        // Let the connections of the start-up probes close, then fill the limit with connections
        // that each prove they were admitted.
        try await harness.waitForIdleConnections()
        var kept: [SocketConnection] = []
        for _ in 0..<20 {
            let connection = try SocketConnection(path: harness.socketPath)
            #expect(try connection.request("GET", "/v1/token").status == 200)
            kept.append(connection)
        }
        let excess = try SocketConnection(path: harness.socketPath)
        let refused = try excess.readResponse()
        #expect(refused.status == 503)
        #expect(jsonObject(refused.body)?["error"] as? String == "too_many_connections")
        #expect(excess.isClosedByPeer())
        for connection in kept {
            #expect(try connection.request("GET", "/v1/token").status == 200)
        }
        kept.removeAll()
        try await eventually("connections to be released") {
            (try? socketRequest(harness.socketPath, "GET", "/v1/token").status) == 200
        }
        #expect(try await harness.stop() == 0)
    }

    @Test func refusesAnOversizedRequestHead() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        let connection = try SocketConnection(path: harness.socketPath)
        try connection.send(
            "GET /v1/token HTTP/1.1\r\nHost: x\r\nX-Padding: \(String(repeating: "a", count: 9000))\r\n\r\n")
        let response = try connection.readResponse()
        #expect(response.status == 431)
        #expect(connection.isClosedByPeer())
        // A head that never ends is refused when it passes the limit, not held until it ends:
        // a request target, then one header value, each longer than the limit.
        for start in ["GET /v1/token?", "GET /v1/token HTTP/1.1\r\nX-Padding: "] {
            let unending = try SocketConnection(path: harness.socketPath)
            try unending.send(start + String(repeating: "a", count: 9000))
            let refused = try unending.readResponse()
            #expect(refused.status == 431)
            #expect(refused.header(ProtocolHeader.error) == ErrorCode.requestHeadTooLarge.rawValue)
            #expect(unending.isClosedByPeer())
        }
        #expect(try socketRequest(harness.socketPath, "GET", "/v1/token").status == 200)
        #expect(try await harness.stop() == 0)
    }

    @Test func timesOutSlowAndIdlePeers() async throws {
        let harness = try await DaemonHarness(
            expiresIn: 600, socket: #"header_timeout = "400ms"\#nidle_timeout = "400ms""#)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        // Slowloris: a head that never completes gets 408 and is closed.
        // (The reads wait for the daemon's timeouts: on a thread of their own.)
        let slow = try SocketConnection(path: harness.socketPath)
        try slow.send("GET /v1/token HTTP/1.1\r\nHost: x\r\n")
        let timedOut = try await onOwnThread { try slow.readResponse() }
        #expect(timedOut.status == 408)
        #expect(await onOwnThread { slow.isClosedByPeer() })
        // Dripping the head keeps no connection open: the timeout runs from the first bytes.
        let drip = try SocketConnection(path: harness.socketPath)
        let started = ContinuousClock.now
        for byte in "GET /v1/token HTTP/1.1\r\nHost: x\r\nX-Slow: abcdefghijklmnopqrstuvwxyz" {
            guard (try? drip.send(String(byte))) != nil else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(await onOwnThread { try? drip.readResponse() }?.status == 408)
        #expect(started.duration(to: .now) < .seconds(5), "the drip was cut off near the 400 ms header timeout")
        // A kept-alive connection left idle is closed without a word.
        let idle = try SocketConnection(path: harness.socketPath)
        #expect(try idle.request("GET", "/v1/token").status == 200)
        #expect(await onOwnThread { idle.isClosedByPeer() })
        #expect(try await harness.stop() == 0)
    }

    @Test func survivesAbruptDisconnects() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        for index in 0..<200 {
            let connection = try SocketConnection(path: harness.socketPath)
            try connection.send(index % 2 == 0 ? "GET /v1/token HTTP/1.1\r\nHost: x\r\n\r\n" : "GET /v1/to")
            var hardClose = linger(l_onoff: 1, l_linger: 0)
            setsockopt(connection.fd, SOL_SOCKET, SO_LINGER, &hardClose, socklen_t(MemoryLayout<linger>.size))
        }
        #expect(try socketRequest(harness.socketPath, "GET", "/v1/token").status == 200)
        #expect(harness.process?.isRunning == true)
        #expect(try await harness.stop() == 0)
    }

    @Test func refusesUsersNotAllowedAndLetsAllowedOnesIn() async throws {
        let harness = try await DaemonHarness(
            expiresIn: 600,
            extraConfig: """
                [access]
                allowed_users = ["nobody"]
                allowed_groups = ["daemon"]
                """)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await eventually("the first token") { !harness.emulator.issuedTokens.isEmpty }
        let token = try #require(harness.emulator.issuedTokens.last?.token)

        // root is not special: not listed, so refused.
        let refused = try socketRequest(harness.socketPath, "GET", "/v1/token")
        #expect(refused.status == 403)
        let body = try #require(jsonObject(refused.body))
        #expect(body["error"] as? String == "peer_not_allowed")
        #expect(!refused.body.contains(token))
        #expect(try await harness.client([]).status == 77)

        // An allowed user, by name.
        let asNobody = try await harness.client(asUser: "nobody")
        #expect(asNobody.status == 0)
        #expect(asNobody.standardOutput == token + "\n")
        // A member of an allowed group (supplementary), as a user not listed.
        let asDaemonGroup = try await harness.client(asUser: "games", groups: ["daemon"])
        #expect(asDaemonGroup.status == 0)
        // Neither.
        let asGames = try await harness.client(asUser: "games")
        #expect(asGames.status == 77)

        #expect(try await harness.stop() == 0)
        let log = harness.log()
        #expect(log.contains("Refused a peer not allowed by [access]"))
        #expect(log.contains("peer.uid=0"))
        #expect(log.contains("peer.exe="))
        #expect(harness.leakedSecrets() == [])
    }
}
