import WebhookTokenProtocol

/// The version of webhook-tokend, reported by `--version` and in the token request's User-Agent.
public enum DaemonVersion {
    public static let string = SocketProtocol.version
}
