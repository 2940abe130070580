import Testing
import WebhookTokenCore

@Suite struct FormURLEncodingTests {
    @Test(arguments: [
        ("a+b", "a b"), ("%C3%A9", "é"), ("%c3%a9", "é"), ("*%3Awebhooks%2F**", "*:webhooks/**"), ("", ""),
    ])
    func decodesPercentEscapesAndPlus(encoded: String, text: String) {
        #expect(FormURLEncoding.decode(encoded) == text)
    }

    @Test(arguments: ["%", "%4", "%zz", "%FF"])
    func refusesMalformedEscapesAndInvalidUTF8(encoded: String) {
        #expect(FormURLEncoding.decode(encoded) == nil)
    }

    @Test(arguments: ["pé x&y=z", "+/=:%&?#", "日本語 text", "\u{1F511}"])
    func encodingRoundTrips(text: String) {
        #expect(FormURLEncoding.decode(FormURLEncoding.encode(text)) == text)
    }

    @Test func fieldsAreJoinedWithAmpersandsInOrder() throws {
        let body = FormURLEncoding.encode([("grant_type", "client_credentials"), ("scope", "a b&c")])
        #expect(body == "grant_type=client_credentials&scope=a+b%26c")
        let fields = try #require(FormURLEncoding.decodeFields(body))
        #expect(fields.map(\.0) == ["grant_type", "scope"])
        #expect(fields.map(\.1) == ["client_credentials", "a b&c"])
    }
}
