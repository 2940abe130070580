import Testing

@testable import WebhookTokenDaemon

/// When the watchdog gives back serving's code pages: at rest for a whole ping interval, once.
@Suite struct QuietSpellTests {
    /// The outcomes of looks at (connections opened and closed so far, connections open now).
    func looks(_ seen: [(changes: Int, open: Int)]) -> [Bool] {
        var spell = QuietSpell()
        return seen.map { spell.look(changes: $0.changes, open: $0.open) }
    }

    @Test func releasesOnceAfterAWholeIntervalWithoutConnections() {
        // The first look has nothing to compare with; the second finds a whole quiet interval;
        // later ones are the same quiet spell.
        #expect(looks([(3, 0), (3, 0), (3, 0), (3, 0)]) == [false, true, false, false])
    }

    @Test func waitsForAWholeQuietIntervalAfterActivity() {
        let outcomes = looks([
            (0, 0),
            (6, 0),  // connections came and went during the interval
            (6, 0),  // quiet: released
            (7, 1),  // a connection is open
            (7, 1),  // a long-poll held open over an interval is not rest
            (8, 0),  // it closed during the interval: not yet
            (8, 0),  // a new quiet spell
        ])
        #expect(outcomes == [false, false, true, false, false, false, true])
    }
}
