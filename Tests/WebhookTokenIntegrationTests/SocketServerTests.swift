import Foundation
import Testing
import TokenEndpointEmulator

/// HTTP behaviour of the daemon's socket: routing, errors, keep-alive, pipelining, bad input.
@Suite("Socket server protocol", .serialized)
struct SocketServerTests {
    @Test func answersErrorsAsJSONWithStableCodes() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()

        let missing = try socketRequest(harness.socketPath, "GET", "/v2/token")
        #expect(missing.status == 404)
        #expect(jsonObject(missing.body)?["error"] as? String == "not_found")

        let wrongMethod = try socketRequest(harness.socketPath, "DELETE", "/v1/token")
        #expect(wrongMethod.status == 405)
        #expect(wrongMethod.header("Allow") == "GET, HEAD")
        #expect(jsonObject(wrongMethod.body)?["error"] as? String == "method_not_allowed")

        let getRefresh = try socketRequest(harness.socketPath, "GET", "/v1/token/refresh")
        #expect(getRefresh.status == 405)
        #expect(try await harness.stop() == 0)
    }

    @Test func keepsConnectionsAliveAndAnswersPipelinedRequestsInOrder() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        let connection = try SocketConnection(path: harness.socketPath)
        for _ in 0..<5 {
            #expect(try connection.request("GET", "/v1/token").status == 200)
        }
        try connection.send(
            "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/token?format=raw HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        let first = try connection.readResponse()
        let second = try connection.readResponse()
        let third = try connection.readResponse()
        #expect(jsonObject(first.body)?["state"] as? String == "valid")
        #expect(second.body == harness.emulator.issuedTokens.last?.token)
        #expect(third.status == 404)
        #expect(try await harness.stop() == 0)
    }

    @Test func refusesRequestBodiesAndMalformedRequests() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()

        let withBody = try SocketConnection(path: harness.socketPath)
        try withBody.send("GET /v1/token HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        let tooLarge = try withBody.readResponse()
        #expect(tooLarge.status == 413)
        #expect(withBody.isClosedByPeer())

        let garbage = try SocketConnection(path: harness.socketPath)
        try garbage.send("THIS IS NOT HTTP\r\n\r\n")
        #expect(try garbage.readResponse().status == 400)
        #expect(garbage.isClosedByPeer())

        // A client vanishing mid-request harms nobody.
        let vanishing = try SocketConnection(path: harness.socketPath)
        try vanishing.send("GET /v1/tok")
        _ = vanishing
        #expect(try socketRequest(harness.socketPath, "GET", "/v1/token").status == 200)
        let status = try await harness.stop()
        #expect(status == 0, "\(harness.log())")
    }
}

/// `GET /metrics`: Prometheus text with the documented metrics, moving with the traffic.
@Suite("Metrics endpoint", .serialized)
struct MetricsEndpointTests {
    static func value(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    @Test func servesPrometheusMetricsThatFollowTheTraffic() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        for _ in 0..<7 { _ = try socketRequest(harness.socketPath, "GET", "/v1/token") }
        _ = try socketRequest(harness.socketPath, "GET", "/nope")
        let response = try socketRequest(harness.socketPath, "GET", "/metrics")
        #expect(response.status == 200)
        #expect(response.header("Content-Type")?.hasPrefix("text/plain") == true)
        let text = response.body
        #expect((Self.value(text, #"webhook_tokend_requests_total{endpoint="token",status="200"}"#) ?? 0) >= 7)
        #expect(Self.value(text, #"webhook_tokend_requests_total{endpoint="other",status="404"}"#) == 1)
        #expect(
            Self.value(text, #"webhook_tokend_token_fetches_total{profile="default",result="success",code="ok"}"#) == 1)
        #expect(Self.value(text, #"webhook_tokend_state{profile="default",state="valid"}"#) == 1)
        #expect(Self.value(text, #"webhook_tokend_state{profile="default",state="expired"}"#) == 0)
        let expiresIn = try #require(Self.value(text, #"webhook_tokend_token_expires_in_seconds{profile="default"}"#))
        #expect(expiresIn > 590 && expiresIn <= 600)
        #expect(
            (Self.value(text, #"webhook_tokend_token_expiry_timestamp_seconds{profile="default"}"#) ?? 0)
                > Date().timeIntervalSince1970)
        #expect((Self.value(text, "webhook_tokend_open_connections") ?? 0) >= 1)
        #expect(text.contains(#"webhook_tokend_request_duration_seconds_bucket{endpoint="token""#))
        #expect(!text.contains(harness.emulator.issuedTokens.last?.token ?? "?"))
        #expect(try await harness.stop() == 0)
    }
}
