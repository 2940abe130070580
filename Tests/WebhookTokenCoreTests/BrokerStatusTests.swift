import Testing
import WebhookTokenCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

private let tokenURL = "https://v1.api.us.janrain.com/abc-123/login/token"
private let secretToken = "eyJhbGciOi.SECRET-token_value"

private func status(_ machine: Machine, at now: ManualInstant) -> BrokerStatus {
    BrokerStatus(machine: machine, now: now, epochSeconds: epoch(at: now), tokenURL: tokenURL)
}

/// The parts of `/v1/status` the tests read back.
private struct StatusJSON: Decodable {
    struct LastError: Decodable {
        let `class`: String
        let code: String
        let httpStatus: Int?
        let error: String?
        let errorDescription: String?
        let detail: String
        let at: String
    }

    let state: String
    let summary: String
    let tokenUrl: String
    let tokenFingerprint: String?
    let scope: String?
    let expiresAt: String?
    let expiresIn: Int64?
    let lastSuccess: String?
    let nextFetch: String?
    let nextFetchIn: Int64?
    let nextFetchIsRetry: Bool
    let fetchInFlight: Bool
    let consecutiveFailures: Int
    let lastError: LastError?
    let counters: [String: Int]
}

private func decoded(_ json: String) throws -> StatusJSON {
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    return try decoder.decode(StatusJSON.self, from: Data(json.utf8))
}

/// A machine holding a one-hour token received at the origin (09:42:07 UTC), renewal due at 10:27:07.
private func validMachine() -> Machine {
    var machine = Machine(policy: RenewalPolicy())
    _ = machine.start(now: .origin)
    _ = machine.fetchSucceeded(token(secretToken), now: .origin, epochSeconds: startEpoch, unitRandom: 0)
    return machine
}

@Suite struct BrokerStatusTests {
    @Test func validTokenSummaryGivesExpiryAndNextRenewal() {
        #expect(
            status(validMachine(), at: .origin).summary() == "token valid until 10:42:07 UTC, next renewal 10:27:07 UTC"
        )
    }

    @Test func jsonNeverContainsTheAccessToken() throws {
        let machine = validMachine()
        let json = status(machine, at: .at(600)).json()
        #expect(!json.contains(secretToken))
        #expect(!json.contains("SECRET"))
        #expect(json.hasSuffix("}\n"))
        let fields = try decoded(json)
        #expect(fields.state == "valid")
        #expect(fields.tokenUrl == tokenURL)
        #expect(fields.tokenFingerprint == TokenFingerprint.of(secretToken))
        #expect(fields.scope == "*:webhooks/**")
        #expect(fields.expiresAt == "2026-11-25T10:42:07Z")
        #expect(fields.expiresIn == 3000)
        #expect(fields.lastSuccess == "2026-11-25T09:42:07Z")
        #expect(fields.nextFetch == "2026-11-25T10:27:07Z")
        #expect(fields.nextFetchIn == 2100)
        #expect(!fields.nextFetchIsRetry)
        #expect(!fields.fetchInFlight)
        #expect(fields.consecutiveFailures == 0)
        #expect(fields.lastError == nil)
        #expect(fields.counters["fetches_started"] == 1)
        #expect(fields.counters["fetches_succeeded"] == 1)
        #expect(fields.summary == status(machine, at: .at(600)).summary())
    }

    @Test func humanTextNeverContainsTheAccessToken() {
        let text = status(validMachine(), at: .origin).humanText()
        #expect(!text.contains(secretToken))
        #expect(text.contains("token:          sha256:\(TokenFingerprint.of(secretToken))… scope *:webhooks/**"))
        #expect(text.contains("next fetch:     2026-11-25T10:27:07Z (renewal in 45 min)"))
        #expect(text.hasPrefix("state:          valid — token valid until 10:42:07 UTC"))
    }

    @Test func firstFetchInFlightIsWaitingForTheFirstToken() {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        let status = status(machine, at: .origin)
        #expect(status.summary() == "waiting for first token: request in flight")
        #expect(status.fetchInFlight)
        #expect(status.tokenFingerprint == nil)
    }

    @Test func startingWithAFailureSaysWhatFailedAndWhenItRetries() throws {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        let unavailable = try #require(
            TokenResponse.interpret(
                status: 503, contentType: "text/html", retryAfter: "8", body: [], requestedScope: "*:webhooks/**"
            ).failure)
        _ = machine.fetchFailed(unavailable, now: .origin, epochSeconds: startEpoch, unitRandom: 0.5)
        let status = status(machine, at: .origin)
        #expect(status.state == .starting)
        #expect(status.summary() == "waiting for first token: endpoint answered 503, retrying in 8 s")
        let fields = try decoded(status.json())
        #expect(fields.lastError?.class == "transient")
        #expect(fields.lastError?.code == "server_error")
        #expect(fields.lastError?.httpStatus == 503)
        #expect(fields.lastError?.at == "2026-11-25T09:42:07Z")
        #expect(fields.nextFetchIsRetry)
        #expect(fields.tokenFingerprint == nil)
        #expect(fields.expiresAt == nil)
    }

    @Test func renewingAndDegradedSummariesKeepTheExpiry() {
        var machine = validMachine()
        _ = machine.deadlineReached(now: .at(2700))
        #expect(status(machine, at: .at(2700)).summary() == "token valid until 10:42:07 UTC, renewing now")
        _ = machine.fetchFailed(connectionRefused, now: .at(2700), epochSeconds: epoch(at: .at(2700)), unitRandom: 0.5)
        #expect(
            status(machine, at: .at(2700)).summary()
                == "token valid until 10:42:07 UTC; renewal failing: endpoint unreachable (connection refused), retrying in 1 s"
        )
    }

    @Test func expiredTokenSummarySaysWhenItExpiredAndWhy() {
        var machine = validMachine()
        var now = ManualInstant.at(2700)
        var action = machine.deadlineReached(now: now).next
        // The endpoint is down; retries back off to once a minute, until well past the serving threshold.
        while true {
            #expect(action == .fetch)
            action =
                machine.fetchFailed(connectionRefused, now: now, epochSeconds: epoch(at: now), unitRandom: 0.5).next
            if now >= .at(3540) { break }
            // Wake-ups until the next fetch (one of them reports the expiry).
            while case .wait(let until) = action {
                now = until
                action = machine.deadlineReached(now: now).next
            }
        }
        let status = status(machine, at: now)
        #expect(status.state == .expired)
        #expect(
            status.summary()
                == "token expired 10:42:07 UTC; endpoint unreachable (connection refused), retrying in 1 min")
    }

    @Test func failedSummaryGivesTheEndpointsErrorAndTheRemedy() {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        _ = machine.fetchFailed(invalidClient, now: .origin, epochSeconds: startEpoch, unitRandom: 0.5)
        #expect(
            status(machine, at: .origin).summary()
                == "no valid token: endpoint answered 401 (invalid_client: Client authentication failed); check client_id and the client secret, retrying in 1 s"
        )
        _ = machine.deadlineReached(now: .at(1))
        #expect(
            status(machine, at: .at(1)).summary()
                == "no valid token: endpoint answered 401 (invalid_client: Client authentication failed); check client_id and the client secret, retrying now"
        )
    }

    @Test func jsonEscapesTheFailureDetail() throws {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        let odd = FetchFailure(
            kind: .tls, severity: .transient, detail: "TLS handshake failed: \"bad\\cert\"\n\tline two")
        _ = machine.fetchFailed(odd, now: .origin, epochSeconds: startEpoch, unitRandom: 0.5)
        let fields = try decoded(status(machine, at: .origin).json())
        #expect(fields.lastError?.detail == "TLS handshake failed: \"bad\\cert\"\n\tline two")
        #expect(fields.lastError?.code == "tls_error")
    }

    @Test(arguments: [
        (Int64(0), "0 s"), (45, "45 s"), (60, "1 min"), (200, "3 min 20 s"), (3600, "1 h"), (3900, "1 h 5 min"),
        (7260, "2 h 1 min"),
    ])
    func humanDurationsReadNaturally(seconds: Int64, text: String) {
        #expect(BrokerStatus.humanDuration(seconds) == text)
    }
}

extension Result {
    fileprivate var failure: Failure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}
