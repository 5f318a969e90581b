import Testing

@testable import KeyVault

@Suite("Reading a page's nextLink ahead of its items")
struct PageLinkTests {
    @Test(
        "The link is found as the top-level object's last member (Key Vault's order) or its first",
        arguments: [
            (
                #"{"value":[{"id":"https://v/secrets/a","tags":{"nextLink":"decoy"}}],"nextLink":"https://v/secrets?$skiptoken=b"}"#,
                "https://v/secrets?$skiptoken=b"
            ),
            (
                #"{"nextLink":"https://v/secrets?$skiptoken=c","value":[{"tags":{"nextLink":"decoy"}}]}"#,
                "https://v/secrets?$skiptoken=c"
            ),
            ("{\n  \"value\": [],\n  \"nextLink\" : \"https://v/keys?x=1\"\n}\n", "https://v/keys?x=1"),
            (#"{"value":[],"nextLink":"https:\/\/v\/secrets?a=1\u0026b=2"}"#, "https://v/secrets?a=1&b=2"),
        ])
    func found(page: String, link: String) throws {
        let scanned = try #require(PageLink.scan(Array(page.utf8)))
        #expect(scanned.link == link)
    }

    @Test("A null or empty link ends the listing")
    func lastPage() throws {
        #expect(try #require(PageLink.scan(Array(#"{"value":[],"nextLink":null}"#.utf8))).link == nil)
        #expect(try #require(PageLink.scan(Array(#"{"value":[{"id":"x"}],"nextLink":""}"#.utf8))).link == nil)
    }

    @Test(
        "Anything else is left to the full decode: a nested nextLink is never taken for the page's",
        arguments: [
            #"{"value":[{"id":"x","tags":{"nextLink":"decoy"}}]}"#,
            #"{"value":[],"nextLink":"https://v/secrets?$skiptoken=d"#,
            #"{"value":[],"nextLink":42}"#,
            #"{"value":[],"nextLink":"https://v/a","extra":1,"more":{"nextLink":"decoy"}}"#,
            "",
            "[]",
        ])
    func notFound(page: String) {
        #expect(PageLink.scan(Array(page.utf8)) == nil)
    }
}
