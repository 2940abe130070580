import Testing
import WebhookTokenCore

@Suite struct PresentedTokenTests {
    @Test func jsonSplicesTheSecondsLeftBetweenThePrerenderedParts() {
        let presented = PresentedToken(
            token: token("abc.DEF", scope: "*:webhooks/**"), expiresAtEpochSeconds: 1_795_603_327)
        #expect(
            presented.json(secondsLeft: 1234)
                == #"{"access_token":"abc.DEF","token_type":"Bearer","expires_in":1234,"expires_at":"2026-11-25T10:42:07Z","scope":"*:webhooks/**","fingerprint":"\#(TokenFingerprint.of("abc.DEF"))"}"#
                + "\n")
        #expect(presented.raw == Array("abc.DEF".utf8))
        #expect(presented.fingerprint == TokenFingerprint.of("abc.DEF"))
    }

    @Test func scopeIsEscapedInTheJSON() {
        let presented = PresentedToken(token: token("t", scope: #"a "b"\c"#), expiresAtEpochSeconds: 0)
        #expect(
            String(decoding: presented.jsonTail, as: UTF8.self)
                == #","expires_at":"1970-01-01T00:00:00Z","scope":"a \"b\"\\c","fingerprint":"\#(TokenFingerprint.of("t"))"}"#
                + "\n")
    }
}
