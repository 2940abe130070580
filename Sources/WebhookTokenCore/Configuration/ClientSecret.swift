/// The configuration client's secret.
///
/// Its `description` and `debugDescription` are redacted, so interpolating it into a log line or an
/// error message cannot leak it; the only way to the bytes is the explicit ``revealed`` property,
/// which the token request builder alone uses.
public struct ClientSecret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let revealed: String

    public init(_ secret: String) {
        self.revealed = secret
    }

    /// Builds a secret from the contents of a secret file: exactly one trailing newline (`\n` or
    /// `\r\n`), as editors and `echo` add, is stripped; anything else is part of the secret.
    ///
    /// Works on Unicode scalars, not `Character`s: `"\r\n"` is a single `Character` in Swift, so
    /// `dropLast(2)` on a CRLF-terminated string would also drop the secret's last character.
    public init(fileContents: String) {
        var secret = Substring(fileContents).unicodeScalars
        if secret.last == "\n" {
            secret.removeLast()
            if secret.last == "\r" { secret.removeLast() }
        }
        self.revealed = String(secret)
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}
