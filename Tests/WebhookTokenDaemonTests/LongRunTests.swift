import Testing
import WebhookTokenCore

/// Days and outages, through the production driver on a manual clock.
@Suite struct LongRunTests {
    static let connectionRefused = FetchFailure(
        kind: .connectionRefused, severity: .transient, detail: "endpoint unreachable (connection refused)")

    @Test func aDayOfHourlyTokensFetchesAboutThirtyThreeTimesAndNeverServesAStaleToken() async throws {
        let simulation = try DriverSimulation()
        try await simulation.run(until: .seconds(86_400))
        let starts = simulation.fetchStarts
        #expect((32...35).contains(starts.count), "fetches: \(starts.count)")
        let intervals = zip(starts, starts.dropFirst()).map { $1 - $0 }
        // 70–75 % of the lifetime after the previous request was sent.
        #expect(intervals.allSatisfy { $0 >= .seconds(2520) && $0 <= .seconds(2701) }, "\(intervals)")
        #expect(Set(intervals.map(\.components.seconds)).count > 5, "jitter spreads the renewals")
        #expect(simulation.unservedAt == [.zero], "a token is always served once the first fetch is done")
        #expect(simulation.servedTooLateAt.isEmpty)
        #expect(simulation.counters.fetchesSucceeded == starts.count)
    }

    @Test func anOutageShorterThanFourteenMinutesIsInvisibleToConsumers() async throws {
        let simulation = try DriverSimulation()
        simulation.endpoint = { started in
            // Down from 40 minutes in, before the first renewal, for 13 minutes past that renewal.
            if started >= .seconds(2400) && started < .seconds(2700 + 13 * 60) {
                return .failure(Self.connectionRefused)
            }
            return .success(DriverSimulation.token())
        }
        try await simulation.run(until: .seconds(4 * 3600))
        #expect(simulation.unservedAt == [.zero])
        #expect(simulation.servedTooLateAt.isEmpty)
        #expect(simulation.counters.fetchesFailedTransient > 5)
    }

    @Test func aLongOutageStopsServingUntilTheEndpointIsBack() async throws {
        let simulation = try DriverSimulation()
        simulation.endpoint = { started in
            if started >= .seconds(2400) && started < .seconds(5400) { return .failure(Self.connectionRefused) }
            return .success(DriverSimulation.token())
        }
        try await simulation.run(until: .seconds(4 * 3600))
        let gap = simulation.unservedAt.dropFirst()
        // The only token was requested at 0 s (its lifetime counts from there): served until
        // 3540 s; unserved until the first retry after the outage, at most a minute later.
        #expect(gap.first == .seconds(3540))
        #expect(gap.allSatisfy { $0 >= .seconds(3540) && $0 < .seconds(5470) })
        #expect(simulation.servedTooLateAt.isEmpty)
        #expect(simulation.state == .valid)
    }

    @Test func oneSecondTokensAreRenewedWithoutHammering() async throws {
        let simulation = try DriverSimulation()
        simulation.probeInterval = .milliseconds(50)
        simulation.fetchLatency = .milliseconds(10)
        simulation.tooLateBelowSeconds = nil
        simulation.endpoint = { _ in .success(DriverSimulation.token(lifetime: .seconds(1))) }
        try await simulation.run(until: .seconds(60))
        // Renewal 0.70–0.75 s after the request was sent: 80–86 fetches a minute, not thousands.
        #expect((75...90).contains(simulation.fetchStarts.count), "fetches: \(simulation.fetchStarts.count)")
    }
}
