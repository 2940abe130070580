/// The version of webhook-tokend, reported by `--version` and in the token request's User-Agent.
public enum DaemonVersion {
    public static let string = "0.1.0"
}
