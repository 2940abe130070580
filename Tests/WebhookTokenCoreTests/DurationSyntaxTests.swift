import Testing
import WebhookTokenCore

@Suite struct DurationSyntaxTests {
    @Test(arguments: [
        ("90s", Duration.seconds(90)),
        ("1m30s", .seconds(90)),
        ("500ms", .milliseconds(500)),
        ("2h", .seconds(7200)),
        ("1h30m", .seconds(5400)),
        ("1.5s", .milliseconds(1500)),
        ("0s", .zero),
        (" 15s ", .seconds(15)),
        ("1h1m1s1ms", .milliseconds(3_661_001)),
    ])
    func parsesNumbersWithUnits(text: String, expected: Duration) {
        #expect(DurationSyntax.parse(text) == expected)
    }

    @Test(arguments: ["30", "", "  ", "5 m", "1h30", "-5s", "s", "1e3s", "30S", "1d", "1..5s", "ten seconds", "5s!"])
    func refusesAnythingButNumbersWithUnits(text: String) {
        #expect(DurationSyntax.parse(text) == nil)
    }

    @Test(arguments: ["99999999999999999999h", "87601h", "999999999999h1s", "87599h60m1s"])
    func refusesAbsurdlyLongDurationsInsteadOfOverflowing(text: String) {
        #expect(DurationSyntax.parse(text) == nil)
    }

    @Test func acceptsTenYears() {
        #expect(DurationSyntax.parse("87600h") == .seconds(87600 * 3600))
    }

    @Test(arguments: [
        (Duration.seconds(5400), "1h30m"),
        (.seconds(45), "45s"),
        (.milliseconds(1500), "1.5s"),
        (.milliseconds(250), "250ms"),
        (.zero, "0s"),
        (.seconds(3600), "1h"),
        (.seconds(3601), "1h1s"),
        (.seconds(300), "5m"),
    ])
    func formatsTheShortestReadableForm(duration: Duration, text: String) {
        #expect(DurationSyntax.format(duration) == text)
    }

    @Test(arguments: [
        Duration.seconds(5400), .seconds(45), .milliseconds(1500), .milliseconds(250), .seconds(3601), .seconds(86400),
    ])
    func formattedDurationsParseBack(duration: Duration) {
        #expect(DurationSyntax.parse(DurationSyntax.format(duration)) == duration)
    }
}
