import Testing
import WebhookTokenCore

@Suite struct JSONTextTests {
    @Test func escapesQuotesBackslashesAndControlCharacters() {
        #expect(JSONText.escaped("a\"b\\c\nd\re\tf\u{1}g\u{7F}") == #"a\"b\\c\nd\re\tf\u0001g\u007F"#)
    }

    @Test func leavesNonASCIIAlone() {
        #expect(JSONText.string("pé €") == "\"pé €\"")
    }

    @Test func objectKeepsFieldOrder() {
        #expect(
            JSONText.object([("b", "1"), ("a", JSONText.optionalString(nil)), ("c", JSONText.optionalString("x"))])
                == #"{"b":1,"a":null,"c":"x"}"#)
    }
}
