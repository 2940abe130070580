/// A bearer token as the endpoint issued it.
///
/// Its `description` shows only the fingerprint: the token itself must never reach a log line.
public struct IssuedToken: Sendable, Equatable, CustomStringConvertible {
    public let accessToken: String
    /// Always `Bearer` (normalised from whatever case the endpoint used).
    public let tokenType: String
    /// `expires_in` as the endpoint said it: the lifetime from the moment of issue.
    public let lifetime: Duration
    /// The granted scope, or the requested one if the endpoint did not say.
    public let scope: String
    public let fingerprint: String

    public init(accessToken: String, lifetime: Duration, scope: String) {
        self.accessToken = accessToken
        self.tokenType = "Bearer"
        self.lifetime = lifetime
        self.scope = scope
        self.fingerprint = TokenFingerprint.of(accessToken)
    }

    public var description: String { "token \(fingerprint) (\(DurationSyntax.format(lifetime)))" }
}
