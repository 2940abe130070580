import Testing
import WebhookTokenCore

/// The pure machine, event by event. Long runs — days, outages — drive the production driver on
/// a manual clock instead (`LongRunTests` in WebhookTokenDaemonTests).
@Suite struct RenewalStateMachineTests {
    // MARK: - Routine renewal

    @Test func startFetchesAtOnce() {
        var machine = Machine(policy: RenewalPolicy())
        #expect(machine.start(now: .origin) == .fetch)
        #expect(machine.isFetching)
        #expect(machine.state(at: .origin) == .starting)
        #expect(machine.servableToken(at: .origin) == nil)
        #expect(machine.counters.fetchesStarted == 1)
    }

    @Test func successWithoutJitterWaitsUntilAQuarterOfLifetimeRemains() {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        // The answer took a second: the lifetime, and so the renewal point, count from the request.
        let action = machine.fetchSucceeded(token(), now: .at(1), epochSeconds: startEpoch + 1, unitRandom: 0).next
        #expect(action == .wait(until: .at(2700)))
        #expect(machine.nextFetchAt == .at(2700))
        #expect(machine.held?.expiresAt == .at(3600))
        #expect(machine.held?.expiresAtEpochSeconds == startEpoch + 3600)
        #expect(!machine.nextFetchIsRetry)
        #expect(!machine.isFetching)
        #expect(machine.state(at: .at(1)) == .valid)
        #expect(machine.counters.fetchesSucceeded == 1)
        #expect(machine.lastSuccessEpochSeconds == startEpoch + 1)
    }

    @Test(arguments: [UInt64(1), 2, 3, 42, 0xDEAD_BEEF])
    func successWaitsUntilARenewalPointBetween70And75PercentOfLifetime(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        guard
            case .wait(let until) = machine.fetchSucceeded(
                token(), now: .origin, epochSeconds: startEpoch, unitRandom: random.unitRandom()
            ).next
        else {
            Issue.record("expected a wait")
            return
        }
        #expect(until >= .at(0.70 * 3600) && until <= .at(0.75 * 3600))
    }

    @Test func wakingBeforeTheDeadlineWaitsForTheSameDeadline() {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        _ = machine.fetchSucceeded(token(), now: .origin, epochSeconds: startEpoch, unitRandom: 0)
        #expect(machine.deadlineReached(now: .at(1000)).next == .wait(until: .at(2700)))
        #expect(machine.deadlineReached(now: .at(2699.999)).next == .wait(until: .at(2700)))
        #expect(!machine.isFetching)
        #expect(machine.counters.fetchesStarted == 1)
    }

    @Test func reachingTheDeadlineRenewsWhileStillServingTheOldToken() throws {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        _ = machine.fetchSucceeded(token("old"), now: .origin, epochSeconds: startEpoch, unitRandom: 0)
        #expect(machine.deadlineReached(now: .at(2700)).next == .fetch)
        #expect(machine.state(at: .at(2700)) == .renewing)
        #expect(machine.servableToken(at: .at(2700))?.token.accessToken == "old")

        let action = machine.fetchSucceeded(
            token("new"), now: .at(2701), epochSeconds: startEpoch + 2701, unitRandom: 0
        ).next
        #expect(action == .wait(until: .at(5400)))
        let held = try #require(machine.servableToken(at: .at(2701)))
        #expect(held.token.accessToken == "new")
        #expect(held.expiresAt == .at(6300))
        #expect(held.expiresAtEpochSeconds == startEpoch + 6300)
        #expect(machine.state(at: .at(2701)) == .valid)
    }

    // MARK: - Failures

    @Test func transientFailuresBackOffExponentiallyUpToAMinute() {
        var machine = Machine(policy: RenewalPolicy())
        var now = ManualInstant.origin
        _ = machine.start(now: now)
        var delays: [Duration] = []
        for _ in 1...10 {
            guard
                case .wait(let until) = machine.fetchFailed(
                    connectionRefused, now: now, epochSeconds: epoch(at: now), unitRandom: 0.5
                ).next
            else {
                Issue.record("expected a wait after a failure")
                return
            }
            delays.append(now.duration(to: until))
            #expect(machine.deadlineReached(now: until).next == .fetch)
            now = until
        }
        #expect(delays == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60].map { Duration.seconds($0) })
        #expect(machine.consecutiveFailures == 10)
        #expect(machine.counters.fetchesFailedTransient == 10)
        #expect(machine.counters.fetchesStarted == 11)
    }

    @Test func permanentFailuresBackOffUpToFiveMinutes() {
        var machine = Machine(policy: RenewalPolicy())
        var now = ManualInstant.origin
        _ = machine.start(now: now)
        var delays: [Duration] = []
        for _ in 1...11 {
            guard
                case .wait(let until) = machine.fetchFailed(
                    invalidClient, now: now, epochSeconds: epoch(at: now), unitRandom: 0.5
                ).next
            else {
                Issue.record("expected a wait after a failure")
                return
            }
            delays.append(now.duration(to: until))
            _ = machine.deadlineReached(now: until)
            now = until
        }
        #expect(delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300].map { Duration.seconds($0) })
        #expect(machine.counters.fetchesFailedPermanent == 11)
    }

    @Test func transientFailureBeforeTheFirstTokenIsStillStarting() {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        _ = machine.fetchFailed(connectionRefused, now: .at(1), epochSeconds: startEpoch + 1, unitRandom: 0.5)
        #expect(machine.state(at: .at(1)) == .starting)
        #expect(machine.nextFetchIsRetry)
        #expect(machine.lastFailure?.failure == connectionRefused)
        #expect(machine.lastFailure?.epochSeconds == startEpoch + 1)
    }

    @Test func permanentFailureBeforeTheFirstTokenIsFailed() {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        _ = machine.fetchFailed(invalidClient, now: .at(1), epochSeconds: startEpoch + 1, unitRandom: 0.5)
        #expect(machine.state(at: .at(1)) == .failed)
    }

    @Test func retryAfterFromTheEndpointIsHonoured() {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        let busy = FetchFailure(
            kind: .rateLimited, severity: .transient, httpStatus: 429, retryAfter: .seconds(120),
            detail: "endpoint answered 429 Too Many Requests")
        #expect(
            machine.fetchFailed(busy, now: .origin, epochSeconds: startEpoch, unitRandom: 0.5).next
                == .wait(until: .at(120)))
    }

    @Test func failedRenewalDegradesThenSuccessResetsTheBackoff() {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        _ = machine.fetchSucceeded(token(), now: .origin, epochSeconds: startEpoch, unitRandom: 0)
        _ = machine.deadlineReached(now: .at(2700))
        #expect(
            machine.fetchFailed(connectionRefused, now: .at(2700), epochSeconds: startEpoch + 2700, unitRandom: 0.5)
                .next == .wait(until: .at(2701)))
        #expect(machine.state(at: .at(2700)) == .degraded)
        #expect(machine.nextFetchIsRetry)
        _ = machine.deadlineReached(now: .at(2701))
        #expect(machine.state(at: .at(2701)) == .degraded, "still degraded while the retry is in flight")
        _ = machine.fetchFailed(connectionRefused, now: .at(2701), epochSeconds: startEpoch + 2701, unitRandom: 0.5)
        #expect(machine.consecutiveFailures == 2)
        _ = machine.deadlineReached(now: .at(2703))
        _ = machine.fetchSucceeded(token(), now: .at(2703), epochSeconds: startEpoch + 2703, unitRandom: 0)
        #expect(machine.consecutiveFailures == 0)
        #expect(machine.state(at: .at(2703)) == .valid)
        #expect(machine.lastFailure?.failure == connectionRefused, "the last failure is kept for the record")
        // The next failure starts the backoff afresh at 1 s.
        _ = machine.deadlineReached(now: .at(5403))
        #expect(
            machine.fetchFailed(connectionRefused, now: .at(5403), epochSeconds: startEpoch + 5403, unitRandom: 0.5)
                .next == .wait(until: .at(5404)))
    }

    @Test func permanentFailureWithAServableTokenDegradesThenFails() {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        _ = machine.fetchSucceeded(token(), now: .origin, epochSeconds: startEpoch, unitRandom: 0)
        _ = machine.deadlineReached(now: .at(2700))
        _ = machine.fetchFailed(invalidClient, now: .at(2700), epochSeconds: startEpoch + 2700, unitRandom: 0.5)
        #expect(machine.state(at: .at(2700)) == .degraded)
        #expect(machine.state(at: .at(3540)) == .failed)
    }

    // MARK: - Expiry

    @Test func tokenStopsBeingServedAMinuteBeforeExpiryDuringAnOutage() throws {
        var machine = Machine(policy: RenewalPolicy())
        var now = ManualInstant.origin
        _ = machine.start(now: now)
        var action = machine.fetchSucceeded(token(), now: now, epochSeconds: startEpoch, unitRandom: 0).next
        // The endpoint is down from the first renewal on.
        while now < .at(4000) {
            guard case .wait(let until) = action else {
                Issue.record("expected a wait")
                return
            }
            now = until
            var next = machine.deadlineReached(now: now)
            if next.tokenExpired, case .wait(let deadline) = next.next {
                // The loop woke at the end of serving, to report it; the retry is still due.
                #expect(now == .at(3540))
                now = deadline
                next = machine.deadlineReached(now: now)
            }
            #expect(next.next == .fetch)
            action =
                machine.fetchFailed(connectionRefused, now: now, epochSeconds: epoch(at: now), unitRandom: 0.5).next
        }
        let held = try #require(machine.held)
        #expect(held.servableUntil == .at(3540))
        #expect(machine.servableToken(at: .at(3539.999)) != nil)
        #expect(machine.state(at: .at(3539.999)) == .degraded)
        #expect(machine.servableToken(at: .at(3540)) == nil)
        #expect(machine.state(at: .at(3540)) == .expired)
        #expect(machine.state(at: .at(3600)) == .expired)
        #expect(held.secondsLeft(at: .at(3540)) == 60)
        #expect(held.secondsLeft(at: .at(4000)) == 0)
    }

    @Test func suspendPastExpiryStopsServingAndFetchesAtOnce() {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        #expect(
            machine.fetchSucceeded(token(), now: .origin, epochSeconds: startEpoch, unitRandom: 0).next
                == .wait(until: .at(2700)))
        // The host sleeps at 10 minutes and wakes two hours later: the boot-time clock jumped.
        let resumed = ManualInstant.at(600).advanced(by: .seconds(7200))
        #expect(machine.servableToken(at: resumed) == nil)
        #expect(machine.state(at: resumed) == .expired)
        #expect(machine.deadlineReached(now: resumed).next == .fetch)
        #expect(machine.state(at: resumed) == .expired, "nothing servable while the fetch runs")
        _ = machine.fetchSucceeded(token("fresh"), now: resumed, epochSeconds: startEpoch + 7800, unitRandom: 0)
        #expect(machine.servableToken(at: resumed)?.token.accessToken == "fresh")
    }

    @Test func shortLivedTokenIsServedUntilATenthOfItsLifetimeRemains() throws {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        let action = machine.fetchSucceeded(
            token(lifetime: .seconds(60)), now: .origin, epochSeconds: startEpoch, unitRandom: 0.999
        ).next
        let held = try #require(machine.held)
        #expect(held.servableUntil == .at(54))
        #expect(machine.servableToken(at: .at(53.999)) != nil)
        #expect(machine.servableToken(at: .at(54)) == nil)
        guard case .wait(let until) = action else {
            Issue.record("expected a wait")
            return
        }
        #expect(until >= .at(42) && until <= .at(45))
    }

    // MARK: - Refresh requests

    @Test func refreshIsScheduledThenJoinedThenRateLimited() {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        _ = machine.fetchSucceeded(token("first"), now: .origin, epochSeconds: startEpoch, unitRandom: 0)

        #expect(machine.refresh(now: .at(100)) == .fetchScheduled)
        #expect(machine.refresh(now: .at(100)) == .joinedInFlight, "a second consumer shares the scheduled fetch")
        #expect(
            machine.deadlineReached(now: .at(100)).next == .fetch, "the woken driver fetches before the renewal point")
        #expect(machine.refresh(now: .at(100.1)) == .joinedInFlight)
        _ = machine.fetchSucceeded(token("second"), now: .at(100.5), epochSeconds: startEpoch + 100, unitRandom: 0)
        #expect(machine.servableToken(at: .at(100.5))?.token.accessToken == "second")

        #expect(machine.refresh(now: .at(105)) == .rateLimited)
        #expect(machine.refresh(now: .at(109.999)) == .rateLimited)
        #expect(machine.refresh(now: .at(110)) == .fetchScheduled)
        #expect(machine.counters.refreshesRequested == 6)
        #expect(machine.counters.refreshesRateLimited == 2)
    }

    @Test func refreshCutsATransientRetryWaitShortOnceTheRateLimitHasPassed() {
        var machine = Machine(policy: RenewalPolicy(retryMaximum: .seconds(300)))
        var now = ManualInstant.origin
        _ = machine.start(now: now)
        for _ in 0..<7 {
            _ = machine.fetchFailed(connectionRefused, now: now, epochSeconds: epoch(at: now), unitRandom: 0.5)
            now = machine.nextFetchAt!
            #expect(machine.deadlineReached(now: now).next == .fetch)
        }
        _ = machine.fetchFailed(connectionRefused, now: now, epochSeconds: epoch(at: now), unitRandom: 0.5)
        let retryAt = machine.nextFetchAt!
        #expect(now.duration(to: retryAt) == .seconds(128))
        #expect(machine.refresh(now: now.advanced(by: .seconds(5))) == .rateLimited)
        #expect(
            machine.deadlineReached(now: now.advanced(by: .seconds(5))).next == .wait(until: retryAt),
            "a rate-limited refresh schedules nothing")
        #expect(machine.refresh(now: now.advanced(by: .seconds(20))) == .fetchScheduled)
        #expect(machine.deadlineReached(now: now.advanced(by: .seconds(20))).next == .fetch)
    }

    /// A refresh 30 s after `429 Retry-After: 300` used to start a fetch, and answered 503 while a
    /// valid token was held.
    @Test func refreshWhileRetryAfterIsWaitedOutAnswersTheCurrentTokenWithoutAFetch() throws {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        _ = machine.fetchSucceeded(token("current"), now: .origin, epochSeconds: startEpoch, unitRandom: 0)
        _ = machine.deadlineReached(now: .at(2700))
        let busy = FetchFailure(
            kind: .rateLimited, severity: .transient, httpStatus: 429, retryAfter: .seconds(300),
            detail: "endpoint answered 429 Too Many Requests")
        #expect(
            machine.fetchFailed(busy, now: .at(2700), epochSeconds: startEpoch, unitRandom: 0.5).next
                == .wait(until: .at(3000)))
        guard case .answerNow(.token(let held), .backingOff) = machine.refreshRequested(now: .at(2730), waiter: 1)
        else {
            Issue.record("expected the current token at once")
            return
        }
        #expect(held.token.accessToken == "current")
        #expect(machine.waiterCount == 0)
        #expect(machine.deadlineReached(now: .at(2730)).next == .wait(until: .at(3000)), "no fetch before Retry-After")
        #expect(machine.counters.fetchesStarted == 2)
    }

    @Test func refreshDuringAPermanentErrorBackoffAnswersAtOnce() {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        _ = machine.fetchFailed(invalidClient, now: .origin, epochSeconds: startEpoch, unitRandom: 0.5)
        guard
            case .answerNow(.unavailable(let failure), .backingOff) = machine.refreshRequested(now: .at(0.5), waiter: 1)
        else {
            Issue.record("expected an answer at once")
            return
        }
        #expect(failure == invalidClient)
    }

    @Test func aFailedRefreshAnswersTheCurrentTokenWithTheReason() throws {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        _ = machine.fetchSucceeded(token("current"), now: .origin, epochSeconds: startEpoch, unitRandom: 0)
        #expect(machine.refresh(now: .at(100), waiter: 7) == .fetchScheduled)
        #expect(machine.refresh(now: .at(100), waiter: 8) == .joinedInFlight)
        #expect(machine.deadlineReached(now: .at(100)).next == .fetch)
        let completion = machine.fetchFailed(
            connectionRefused, now: .at(101), epochSeconds: startEpoch, unitRandom: 0.5)
        #expect(completion.waiters == [7, 8])
        guard case .tokenAfterFailedRefresh(let held, let failure) = completion.answer else {
            Issue.record("expected the current token with the failure, got \(completion.answer)")
            return
        }
        #expect(held.token.accessToken == "current")
        #expect(failure == connectionRefused)
    }

    /// The decision to wait and the waiter's registration are one event: a fetch that ends right
    /// after a refresh joined it answers that refresh.
    @Test func aWaiterJoinsTheFetchItDecidedToWaitFor() {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        #expect(machine.refresh(now: .at(0.1), waiter: 3) == .joinedInFlight)
        #expect(machine.firstTokenRequested(now: .at(0.1), waiter: 4) == nil)
        let completion = machine.fetchSucceeded(token(), now: .at(0.2), epochSeconds: startEpoch, unitRandom: 0)
        #expect(completion.waiters == [3, 4])
        #expect(completion.beforeFirstToken)
        #expect(machine.waiterCount == 0)
    }

    @Test func shutdownAnswersEveryWaiterAndStopsTheLoop() {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        #expect(machine.firstTokenRequested(now: .at(0.1), waiter: 1) == nil)
        #expect(machine.refresh(now: .at(0.1), waiter: 2) == .joinedInFlight)
        #expect(machine.shutdown() == [1, 2])
        #expect(machine.refresh(now: .at(0.2), waiter: 3) == .shuttingDown)
        guard case .shuttingDown? = machine.firstTokenRequested(now: .at(0.2), waiter: 4) else {
            Issue.record("expected shutting down")
            return
        }
        let late = machine.fetchSucceeded(token(), now: .at(0.3), epochSeconds: startEpoch, unitRandom: 0)
        #expect(late.next == .stop)
        #expect(late.waiters.isEmpty)
        #expect(machine.deadlineReached(now: .at(1)).next == .stop)
    }

    @Test func theExpiryOfTheHeldTokenIsReportedOnce() {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        _ = machine.fetchSucceeded(
            token(lifetime: .seconds(600)), now: .origin, epochSeconds: startEpoch, unitRandom: 0)
        _ = machine.deadlineReached(now: .at(450))
        // Outage: the retry waits past the end of serving (540 s); the loop wakes to report it.
        #expect(
            machine.fetchFailed(connectionRefused, now: .at(450), epochSeconds: startEpoch, unitRandom: 0.5).next
                == .wait(until: .at(451)))
        _ = machine.deadlineReached(now: .at(451))
        let wait = machine.fetchFailed(
            FetchFailure(kind: .rateLimited, severity: .transient, retryAfter: .seconds(200), detail: "429"),
            now: .at(452), epochSeconds: startEpoch, unitRandom: 0.5)
        #expect(wait.next == .wait(until: .at(540)), "wakes at the end of serving, before the retry at 652 s")
        let atExpiry = machine.deadlineReached(now: .at(540))
        #expect(atExpiry.tokenExpired)
        #expect(atExpiry.next == .wait(until: .at(652)))
        #expect(!machine.deadlineReached(now: .at(600)).tokenExpired)
    }

    // MARK: - Reconfiguration

    @Test func reloadWithoutNewCredentialsOnlyChangesThePolicy() {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        _ = machine.fetchSucceeded(token(), now: .origin, epochSeconds: startEpoch, unitRandom: 0)
        let woken = machine.reconfigure(policy: RenewalPolicy(refreshMinimumInterval: .seconds(60)), refetch: false)
        #expect(!woken)
        #expect(machine.policy.refreshMinimumInterval == .seconds(60))
        #expect(machine.nextFetchAt == .at(2700))
        #expect(machine.refresh(now: .at(59)) == .rateLimited)
    }

    @Test func reloadWithNewCredentialsFetchesAtOnceAndKeepsServing() {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        _ = machine.fetchSucceeded(token("old"), now: .origin, epochSeconds: startEpoch, unitRandom: 0)
        _ = machine.deadlineReached(now: .at(2700))
        _ = machine.fetchFailed(invalidClient, now: .at(2700), epochSeconds: startEpoch + 2700, unitRandom: 0.5)
        let woken = machine.reconfigure(policy: RenewalPolicy(), refetch: true)
        #expect(woken, "the loop is woken")
        #expect(machine.deadlineReached(now: .at(2700.5)).next == .fetch)
        #expect(machine.consecutiveFailures == 0)
        #expect(machine.servableToken(at: .at(2700.5))?.token.accessToken == "old")
        #expect(machine.state(at: .at(2700.5)) == .renewing)
    }

    @Test func reloadDuringAFetchRefetchesRightAfterIt() {
        var machine = Machine(policy: RenewalPolicy())
        _ = machine.start(now: .origin)
        let woken = machine.reconfigure(policy: RenewalPolicy(), refetch: true)
        #expect(!woken, "one fetch in flight at most")
        #expect(
            machine.fetchSucceeded(token("stale"), now: .at(0.2), epochSeconds: startEpoch, unitRandom: 0).next
                == .fetch)
        #expect(machine.isFetching)
        #expect(
            machine.fetchSucceeded(token("fresh"), now: .at(0.4), epochSeconds: startEpoch, unitRandom: 0).next
                == .wait(until: .at(0.2).advanced(by: .seconds(2700))))
        #expect(machine.counters.fetchesStarted == 2)
    }
}
