import PropertyBased
import Testing
import WebhookTokenCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

// Properties of the small codecs and syntaxes the daemon relies on: form encoding and base64 (the
// token request), durations and token URLs (the configuration). Bounded counts keep CI fast; to
// reproduce a failure, add the `.fixedSeed("…")` trait its message names to the test (and remove
// it before committing: it always records an issue).

/// Any Unicode scalar, surrogates excluded, with ASCII (controls included) weighted up.
private let anyScalar = Gen.oneOf(
    Gen.unicodeScalar(in: "\u{0}"..."\u{7F}"),
    Gen.unicodeScalar(in: "\u{80}"..."\u{D7FF}"),
    Gen.unicodeScalar(in: "\u{E000}"..."\u{10FFFF}"))

private let unicodeText = anyScalar.array(of: 0...40).map { String(String.UnicodeScalarView($0)) }

private let formUnreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-._".unicodeScalars)

@Suite struct EncodingPropertyTests {
    // MARK: FormURLEncoding

    @Test func formEncodingRoundTrips() async {
        await propertyCheck(count: 1000, input: unicodeText) { text in
            let encoded = FormURLEncoding.encode(text)
            #expect(FormURLEncoding.decode(encoded) == text)
            #expect(
                encoded.unicodeScalars.allSatisfy { formUnreserved.contains($0) || $0 == "+" || $0 == "%" },
                "\(encoded)")
            // Exactly the unreserved characters pass through; every other byte becomes %XX (or +).
            let expectedLength = text.utf8.reduce(0) { count, byte in
                count + (formUnreserved.contains(Unicode.Scalar(byte)) || byte == UInt8(ascii: " ") ? 1 : 3)
            }
            #expect(encoded.utf8.count == expectedLength)
        }
    }

    @Test func formFieldsRoundTrip() async {
        let fields = zip(unicodeText, unicodeText).array(of: 0...5)
        await propertyCheck(count: 500, input: fields) { pairs in
            let decoded = FormURLEncoding.decodeFields(FormURLEncoding.encode(pairs))
            #expect(decoded?.map(\.0) == pairs.map(\.0))
            #expect(decoded?.map(\.1) == pairs.map(\.1))
        }
    }

    @Test func formDecodingAnyTextNeverCrashesAndInvertsWhenItSucceeds() async {
        let soup = Gen<Unicode.Scalar?>.element(of: Array("%%%+++aZ09 ~&=é\u{0}GfF8C".unicodeScalars))
            .map { $0! }.array(of: 0...30).map { String(String.UnicodeScalarView($0)) }
        await propertyCheck(count: 1000, input: soup) { text in
            guard let decoded = FormURLEncoding.decode(text) else { return }
            #expect(FormURLEncoding.decode(FormURLEncoding.encode(decoded)) == decoded)
        }
    }

    // MARK: Base64

    @Test func base64RoundTripsAndMatchesFoundation() async {
        await propertyCheck(count: 1000, input: Gen<UInt8>.value(in: 0...255).array(of: 0...100)) { bytes in
            let encoded = Base64.encode(bytes)
            #expect(encoded == Data(bytes).base64EncodedString())
            #expect(Base64.decode(encoded) == bytes)
        }
    }

    // MARK: DurationSyntax

    @Test func durationParsingAnyTextNeverCrashes() async {
        let pieces = [
            "0", "1", "9", "00", ".", "..", "5.", ".5", "ms", "s", "m", "h", "d", "µs", " ", "\t", "-", "+",
            "e3", "١", "９", "99999999999999999999", "315360000", "1e400", "nan", "inf", "\u{0}",
        ]
        let soup = Gen<String?>.element(of: pieces).map { $0! }.array(of: 0...8).map { $0.joined() }
        await propertyCheck(count: 1000, input: soup) { text in
            guard let duration = DurationSyntax.parse(text) else { return }
            #expect(duration >= .zero)
            #expect(duration <= .seconds(DurationSyntax.maximumSeconds))
        }
    }

    @Test func durationsOfWholeSecondsRoundTrip() async {
        let seconds = Gen<Int64>.value(in: 0...Int64(DurationSyntax.maximumSeconds))
        await propertyCheck(count: 1000, input: seconds) { seconds in
            let text = DurationSyntax.format(.seconds(seconds))
            #expect(DurationSyntax.parse(text) == .seconds(seconds), "\(seconds) s formatted as \(text)")
            #expect(text.allSatisfy { $0.isASCII && ($0.isNumber || "hms".contains($0)) }, "\(text)")
        }
    }

    @Test func durationsOfHoursMinutesSecondsAndMillisecondsParse() async {
        let parts = zip(
            Gen.int(in: 0...200), Gen.int(in: 0...59), Gen.int(in: 0...59), Gen.int(in: 0...999),
            Gen<UInt8>.bitSet(mask: 0b1111))
        await propertyCheck(count: 1000, input: parts) { hours, minutes, seconds, milliseconds, present in
            guard present != 0 else { return }
            var text = ""
            var expected = Duration.zero
            if present & 1 != 0 {
                text += "\(hours)h"
                expected += .seconds(hours * 3600)
            }
            if present & 2 != 0 {
                text += "\(minutes)m"
                expected += .seconds(minutes * 60)
            }
            if present & 4 != 0 {
                text += "\(seconds)s"
                expected += .seconds(seconds)
            }
            if present & 8 != 0 {
                text += "\(milliseconds)ms"
                expected += .milliseconds(milliseconds)
            }
            guard let parsed = DurationSyntax.parse(text) else {
                Issue.record("\(text) refused")
                return
            }
            #expect(parsed.isClose(to: expected, tolerance: .microseconds(1)), "\(text) parsed as \(parsed)")
            // Millisecond-exact durations survive format → parse, as --check-config prints them.
            let again = DurationSyntax.parse(DurationSyntax.format(parsed))
            #expect(
                again.map { $0.isClose(to: parsed, tolerance: .nanoseconds(1)) } == true,
                "\(text) → \(DurationSyntax.format(parsed))")
        }
    }

    // MARK: TokenURL

    @Test func tokenURLParsingIsStableAndKeepsSecretsOffPlainHTTP() async {
        let pieces = [
            "https", "http", "HTTP", "HttpS", "ftp", "", "://", ":", "//", "/", "?", "#", "@", "[", "]", "[::1]", "::1",
            "localhost", "LOCALHOST", "a.localhost", "127.0.0.1", "127.1.2.3", "127.0.0", "128.0.0.1", "10.0.0.1",
            "example.com", "v1.api.us.janrain.com", "0", "443", "65535", "65536", "+80", "-1", "user", "%40", " ",
            "\n", "\t", "\u{0}", "İ", "K", "é", "token", "login/token", "x=1&y=2", "..",
        ]
        let soup = Gen<String?>.element(of: pieces).map { $0! }.array(of: 0...10).map { $0.joined() }
        let scheme = Gen<String?>.element(of: ["https://", "http://", "HTTP://", ""]).map { $0! }
        let urls = zip(scheme, soup).map { $0 + $1 }
        await propertyCheck(count: 2000, input: urls) { text in
            let url: TokenURL
            do throws(TokenURL.Problem) {
                url = try TokenURL(parsing: text)
            } catch {
                #expect(!error.description.isEmpty)
                return
            }
            #expect(url.scheme == "https" || url.scheme == "http")
            if url.scheme == "http" {
                #expect(isLoopback(url.host), "plain http to \(url.host)")
            }
            #expect(!url.host.isEmpty)
            #expect(url.port.map { (1...65535).contains($0) } != false)
            #expect(url.pathAndQuery.hasPrefix("/"))
            #expect(!url.pathAndQuery.contains("#"))
            do {
                let again = try TokenURL(parsing: url.description)
                #expect(
                    again == url,
                    "\(text.debugDescription) → \(url.description.debugDescription) → \(again.description.debugDescription)"
                )
            } catch {
                Issue.record(
                    "\(text.debugDescription) parsed, but its description \(url.description.debugDescription) does not: \(error)"
                )
            }
        }
    }
}

/// An independent statement of "loopback": `localhost` (and its subdomains), `::1`, or an IPv4
/// address in 127.0.0.0/8 written as four decimal octets.
private func isLoopback(_ host: String) -> Bool {
    if host == "localhost" || host.hasSuffix(".localhost") || host == "::1" { return true }
    let octets = host.split(separator: ".", omittingEmptySubsequences: false)
    return octets.count == 4 && octets[0] == "127"
        && octets.allSatisfy {
            !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } && Int($0).map { $0 <= 255 } == true
        }
}
