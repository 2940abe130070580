import Foundation
import Testing
import WebhookTokenCore
import WebhookTokenServer

/// The README's references are made from the tables the code runs on; these fail when they drift.
@Suite struct DocumentationTests {
    static let readme = "\(SystemdContainer.repository)/README.md"

    /// The text between `<!-- BEGIN name -->` and `<!-- END name -->`.
    static func generatedBlock(_ name: String) throws -> String {
        let text = try String(contentsOfFile: readme, encoding: .utf8)
        let begin = "<!-- BEGIN \(name) -->\n"
        let end = "<!-- END \(name) -->"
        guard let start = text.range(of: begin), let stop = text.range(of: end, range: start.upperBound..<text.endIndex)
        else { throw TestFailure("README.md has no block \(name)") }
        return String(text[start.upperBound..<stop.lowerBound])
    }

    @Test func theConfigurationReferenceIsTheKeyTable() throws {
        #expect(
            try Self.generatedBlock("configuration-keys") == ConfigurationKey.referenceMarkdown(),
            "regenerate with: webhook-tokend --print-reference configuration")
    }

    @Test func theSocketAPIReferenceIsTheRouteTable() throws {
        #expect(
            try Self.generatedBlock("socket-routes") == SocketRoute.referenceMarkdown(),
            "regenerate with: webhook-tokend --print-reference routes")
    }
}
