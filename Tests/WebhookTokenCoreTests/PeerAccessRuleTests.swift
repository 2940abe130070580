import Testing
import WebhookTokenCore

@Suite struct PeerAccessRuleTests {
    let rule = PeerAccessRule(allowedUserIDs: [1001], allowedGroupIDs: [2000])

    @Test func anEmptyRuleLetsEveryoneIn() {
        #expect(PeerAccessRule.everyone.permits(PeerCredentials(pid: 1, uid: 4242, gid: 4242)))
    }

    @Test func aListedUserIsLetIn() {
        #expect(rule.permits(PeerCredentials(pid: 1, uid: 1001, gid: 1001)))
    }

    @Test func aMemberOfAListedGroupIsLetInByPrimaryOrSupplementaryGroup() {
        #expect(rule.permits(PeerCredentials(pid: 1, uid: 5, gid: 2000)))
        #expect(rule.permits(PeerCredentials(pid: 1, uid: 5, gid: 5, supplementaryGroups: [7, 2000])))
    }

    @Test func rootIsNotSpecialUnlessListed() {
        #expect(!rule.permits(PeerCredentials(pid: 1, uid: 0, gid: 0)))
        #expect(
            PeerAccessRule(allowedUserIDs: [0], allowedGroupIDs: []).permits(PeerCredentials(pid: 1, uid: 0, gid: 0)))
    }

    @Test func anyoneElseIsRefused() {
        #expect(!rule.permits(PeerCredentials(pid: 1, uid: 1002, gid: 1002, supplementaryGroups: [2001])))
    }
}
