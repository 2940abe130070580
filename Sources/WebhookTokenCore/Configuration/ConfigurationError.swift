/// Everything wrong with a configuration file, each problem naming the file, the key, the line
/// where it can be told, what was found and what was expected.
///
/// All problems are collected rather than stopping at the first, so that one edit fixes them all.
public struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    public var issues: [Issue]

    public init(issues: [Issue]) {
        self.issues = issues
    }

    public init(_ issue: Issue) {
        self.issues = [issue]
    }

    public var description: String {
        issues.map(\.description).joined(separator: "\n")
    }

    /// One problem in one place.
    public struct Issue: Equatable, CustomStringConvertible, Sendable {
        public var file: String
        /// 1-based line, where it can be told.
        public var line: Int?
        /// The dotted key, such as `endpoint.token_url`; `nil` for whole-file problems.
        public var key: String?
        public var problem: Problem

        public init(file: String, line: Int? = nil, key: String? = nil, problem: Problem) {
            self.file = file
            self.line = line
            self.key = key
            self.problem = problem
        }

        public var description: String {
            var location = file
            if let line { location += ":\(line)" }
            if let key { location += ": \(key)" }
            return "\(location): \(problem)"
        }
    }

    public enum Problem: Equatable, CustomStringConvertible, Sendable {
        /// The file is not valid TOML.
        case syntax(String)
        /// A key or table the daemon does not know; with the closest known name, if any is close.
        case unknownKey(suggestion: String?, known: [String])
        /// A value of the wrong TOML type.
        case wrongType(found: String, expected: String)
        /// A value of the right type that is not acceptable.
        case invalidValue(found: String, expected: String)
        /// A value that is well-formed but refused, with the reason (e.g. plain http to a remote host).
        case refused(found: String, reason: String)
        /// A required key is absent.
        case missing(String)
        /// Keys that cannot be given together, or a choice that is ambiguous.
        case conflict(String)
        /// The file (or a file it names) cannot be used: unreadable, unsafe permissions, empty.
        case file(String)

        public var description: String {
            switch self {
            case .syntax(let message):
                return "not valid TOML: \(message)"
            case .unknownKey(let suggestion, let known):
                if let suggestion { return "unknown key; did you mean \"\(suggestion)\"?" }
                return "unknown key; expected one of \(known.joined(separator: ", "))"
            case .wrongType(let found, let expected):
                // TOML type names include "integer" and "array": "found an integer", not "a integer".
                let article = found.first.map { "aeiou".contains($0) } == true ? "an" : "a"
                return "found \(article) \(found), expected \(expected)"
            case .invalidValue(let found, let expected):
                return "found \(found), expected \(expected)"
            case .refused(let found, let reason):
                return "found \(found): \(reason)"
            case .missing(let what):
                return "missing: \(what)"
            case .conflict(let what):
                return what
            case .file(let what):
                return what
            }
        }
    }
}
