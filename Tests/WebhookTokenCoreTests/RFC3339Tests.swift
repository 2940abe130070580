import Testing
import WebhookTokenCore

/// Epochs from `date -u -d <time> +%s`.
@Suite struct RFC3339Tests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00Z"),
        (1_709_164_800, "2024-02-29T00:00:00Z"),
        (1_709_251_199, "2024-02-29T23:59:59Z"),
        (1_795_603_327, "2026-11-25T10:42:07Z"),
        (951_868_800, "2000-03-01T00:00:00Z"),
        (4_107_542_400, "2100-03-01T00:00:00Z"),
        (-1, "1969-12-31T23:59:59Z"),
        (-86_400, "1969-12-31T00:00:00Z"),
        (-14_182_940, "1969-07-20T20:17:40Z"),
        (-2_203_891_201, "1900-02-28T23:59:59Z"),
    ])
    func formatsEpochSecondsAsUTC(epoch: Int64, text: String) {
        #expect(RFC3339.format(epochSeconds: epoch) == text)
    }

    @Test(arguments: [
        (Int64(1_795_603_327), "10:42:07"), (0, "00:00:00"), (-1, "23:59:59"), (1_709_251_199, "23:59:59"),
    ])
    func timeOfDayIsHoursMinutesSecondsUTC(epoch: Int64, text: String) {
        #expect(RFC3339.timeOfDay(epochSeconds: epoch) == text)
    }
}
