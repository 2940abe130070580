import Testing
import WebhookTokenCore

@Suite struct RenewalPolicyTests {
    let policy = RenewalPolicy()

    // MARK: - Renewal

    @Test func renewsWhenAQuarterOfLifetimeRemains() {
        #expect(policy.renewalDelay(lifetime: .seconds(3600), unitRandom: 0) == .seconds(2700))
    }

    @Test func jitterBringsRenewalUpToFivePercentOfLifetimeEarlier() {
        // 3600 × 0.75 − 3600 × 0.05 × 0.999 = 2700 − 179.82
        #expect(policy.renewalDelay(lifetime: .seconds(3600), unitRandom: 0.999).isClose(to: .milliseconds(2_520_180)))
        #expect(policy.renewalDelay(lifetime: .seconds(3600), unitRandom: 0.5).isClose(to: .seconds(2610)))
    }

    @Test func renewalDelayIsProportionalToLifetime() {
        #expect(policy.renewalDelay(lifetime: .seconds(60), unitRandom: 0) == .seconds(45))
        #expect(policy.renewalDelay(lifetime: .seconds(1), unitRandom: 0) == .milliseconds(750))
    }

    @Test func renewalFloorIsHalfTheLifetimeAtMostFiveSeconds() {
        #expect(RenewalPolicy.renewalFloor(lifetime: .seconds(1)) == .milliseconds(500))
        #expect(RenewalPolicy.renewalFloor(lifetime: .seconds(8)) == .seconds(4))
        #expect(RenewalPolicy.renewalFloor(lifetime: .seconds(3600)) == .seconds(5))
    }

    @Test func tinyLifetimesAreNotRenewedBeforeTheFloor() {
        // Renewing at 90 % remaining would mean 0.1 s after issue for a 1 s token: the floor holds it at 0.5 s.
        let eager = RenewalPolicy(renewAtRemainingFraction: 0.9, jitterFraction: 0.05)
        #expect(eager.renewalDelay(lifetime: .seconds(1), unitRandom: 0.999) == .milliseconds(500))
        #expect(eager.renewalDelay(lifetime: .seconds(20), unitRandom: 0) == .seconds(5))
        #expect(eager.renewalDelay(lifetime: .seconds(3600), unitRandom: 0).isClose(to: .seconds(360)))
    }

    // MARK: - Serving

    @Test func servingThresholdIsAMinuteOrATenthOfTheLifetime() {
        #expect(policy.servingThreshold(lifetime: .seconds(3600)) == .seconds(60))
        #expect(policy.servingThreshold(lifetime: .seconds(600)) == .seconds(60))
        #expect(policy.servingThreshold(lifetime: .seconds(60)) == .seconds(6))
        #expect(policy.servingThreshold(lifetime: .seconds(1)) == .milliseconds(100))
    }

    @Test func renewalStartsWellBeforeTheTokenStopsBeingServed() {
        // The documented guarantee: at least 14 minutes between the first renewal attempt and the end of serving.
        let latestRenewal = policy.renewalDelay(lifetime: .seconds(3600), unitRandom: 0)
        let servableFor = Duration.seconds(3600) - policy.servingThreshold(lifetime: .seconds(3600))
        #expect(servableFor - latestRenewal >= .seconds(14 * 60))
    }

    // MARK: - Retries

    @Test func transientRetriesDoubleFromOneSecondUpToAMinute() {
        let delays = (1...10).map { policy.retryDelay(attempt: $0, permanent: false, retryAfter: nil, unitRandom: 0.5) }
        #expect(delays == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60].map { Duration.seconds($0) })
    }

    @Test func permanentRetriesDoubleUpToFiveMinutes() {
        let delays = (1...11).map { policy.retryDelay(attempt: $0, permanent: true, retryAfter: nil, unitRandom: 0.5) }
        #expect(delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300].map { Duration.seconds($0) })
    }

    @Test func retryJitterIsPlusOrMinusHalfButNeverAboveTheCap() {
        #expect(policy.retryDelay(attempt: 3, permanent: false, retryAfter: nil, unitRandom: 0) == .seconds(2))
        #expect(
            policy.retryDelay(attempt: 3, permanent: false, retryAfter: nil, unitRandom: 0.999).isClose(
                to: .milliseconds(5996)))
        #expect(
            policy.retryDelay(attempt: 6, permanent: false, retryAfter: nil, unitRandom: 0.999).isClose(
                to: .milliseconds(47968)))
        #expect(policy.retryDelay(attempt: 7, permanent: false, retryAfter: nil, unitRandom: 0.999) == .seconds(60))
        #expect(policy.retryDelay(attempt: 7, permanent: false, retryAfter: nil, unitRandom: 0) == .seconds(30))
        #expect(policy.retryDelay(attempt: 20, permanent: true, retryAfter: nil, unitRandom: 0.999) == .seconds(300))
    }

    @Test func retryDelayStaysWithinItsBoundsForAnyRandomNumber() {
        var random = SplitMix64(seed: 7)
        for attempt in 1...50 {
            for permanent in [false, true] {
                let cap: Duration = permanent ? .seconds(300) : .seconds(60)
                let base = min(Duration.seconds(1 << min(attempt - 1, 20)), cap)
                let delay = policy.retryDelay(
                    attempt: attempt, permanent: permanent, retryAfter: nil, unitRandom: random.unitRandom())
                #expect(delay >= base / 2 && delay <= min(base * 3 / 2, cap), "attempt \(attempt): \(delay)")
            }
        }
    }

    @Test func retryAfterRaisesTheDelay() {
        #expect(
            policy.retryDelay(attempt: 1, permanent: false, retryAfter: .seconds(7), unitRandom: 0.5) == .seconds(7))
        #expect(
            policy.retryDelay(attempt: 1, permanent: false, retryAfter: .seconds(120), unitRandom: 0.5) == .seconds(120)
        )
    }

    @Test func retryAfterNeverShortensTheDelay() {
        #expect(
            policy.retryDelay(attempt: 6, permanent: false, retryAfter: .seconds(1), unitRandom: 0.5) == .seconds(32))
    }

    @Test func retryAfterIsBoundedByRetryAfterMaximum() {
        #expect(
            policy.retryDelay(attempt: 1, permanent: false, retryAfter: .seconds(86400), unitRandom: 0.5)
                == .seconds(300))
        let patient = RenewalPolicy(retryAfterMaximum: .seconds(30))
        #expect(
            patient.retryDelay(attempt: 1, permanent: false, retryAfter: .seconds(3600), unitRandom: 0.5)
                == .seconds(30))
    }

    @Test func absurdAttemptNumbersDoNotOverflow() {
        #expect(policy.retryDelay(attempt: Int.max, permanent: false, retryAfter: nil, unitRandom: 0.5) == .seconds(60))
        #expect(policy.retryDelay(attempt: 0, permanent: false, retryAfter: nil, unitRandom: 0.5) == .seconds(1))
    }
}
