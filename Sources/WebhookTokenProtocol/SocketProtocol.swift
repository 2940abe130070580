/// The socket API's fixed points, shared by the daemon and the Glibc-only client (and by the
/// packaging), so that neither can drift from the other: the version, the default socket, the
/// paths, the environment the client reads.
public enum SocketProtocol {
    /// The version of webhook-tokend and webhook-token, which are released together.
    public static let version = "0.2.0"

    /// Where the daemon serves by default (`[socket] path`) and where the client looks.
    public static let defaultSocketPath = "/run/webhook-tokend/token.sock"

    /// `sizeof(sockaddr_un.sun_path)` less its terminating NUL: the longest socket path.
    public static let maximumSocketPathBytes = 107

    /// The client's socket path, unless `--socket` says otherwise.
    public static let socketEnvironmentVariable = "WEBHOOK_TOKEN_SOCKET"

    /// The client's profile, unless `--profile` says otherwise.
    public static let profileEnvironmentVariable = "WEBHOOK_TOKEN_PROFILE"

    public static let tokenPath = "/v1/token"
    public static let refreshPath = "/v1/token/refresh"
    public static let statusPath = "/v1/status"
    public static let metricsPath = "/metrics"
    /// `/v1/tokens/{name}` and `/v1/tokens/{name}/refresh`.
    public static let profileTokensPrefix = "/v1/tokens/"

    /// The token path of a profile (`nil`: the default or only one).
    public static func tokenPath(profile: String?) -> String {
        profile.map { profileTokensPrefix + $0 } ?? tokenPath
    }

    /// The refresh path of a profile (`nil`: the default or only one).
    public static func refreshPath(profile: String?) -> String {
        profile.map { profileTokensPrefix + $0 + "/refresh" } ?? refreshPath
    }
}
