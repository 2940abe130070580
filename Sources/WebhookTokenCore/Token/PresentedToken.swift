/// A token rendered once, when it arrives, in the forms the socket serves it in.
///
/// Serving is the hot path — every API call of every consumer on the host — while the token
/// changes once an hour; so the JSON is built here, once, around the one field that changes per
/// request (`expires_in`), and the server only splices in that number.
public final class PresentedToken: Sendable {
    /// The bare token, for `?format=raw`.
    public let raw: [UInt8]
    /// `{"access_token":"…","token_type":"Bearer","expires_in":`
    public let jsonHead: [UInt8]
    /// `,"expires_at":"…","scope":"…","fingerprint":"…"}` and a newline.
    public let jsonTail: [UInt8]
    /// The first 8 hex digits of the token's SHA-256: how consumers tell tokens apart without
    /// comparing (or logging) them, and what `?after=` long-polls against.
    public let fingerprint: String
    /// `expires_at`, for the sinks' `env` format.
    public let expiresAtEpochSeconds: Int64

    public init(token: IssuedToken, expiresAtEpochSeconds: Int64) {
        raw = Array(token.accessToken.utf8)
        jsonHead = Array(
            "{\"access_token\":\(JSONText.string(token.accessToken)),\"token_type\":\"Bearer\",\"expires_in\":".utf8)
        jsonTail = Array(
            ",\"expires_at\":\(JSONText.string(RFC3339.format(epochSeconds: expiresAtEpochSeconds))),\"scope\":\(JSONText.string(token.scope)),\"fingerprint\":\(JSONText.string(token.fingerprint))}\n"
                .utf8)
        fingerprint = token.fingerprint
        self.expiresAtEpochSeconds = expiresAtEpochSeconds
    }

    /// The whole JSON document, for callers off the hot path.
    public func json(secondsLeft: Int64) -> String {
        String(decoding: jsonHead, as: UTF8.self) + String(secondsLeft) + String(decoding: jsonTail, as: UTF8.self)
    }
}
