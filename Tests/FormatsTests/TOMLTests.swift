import Testing
@testable import Formats

/// The TOML reader of topology and scenario files: TOML 1.0 values as the spec defines them, and
/// every malformed input an error with its line and column, never a trap.
@Suite struct TOMLTests {
    static func value(_ text: String, _ key: String = "x") throws -> TOML.Value? { try TOML.parse(text)[key] }

    @Test(arguments: [
        ("x = 42", TOML.Value.integer(42)),
        ("x = -1_000", .integer(-1000)),
        ("x = +7", .integer(7)),
        ("x = 0x2A", .integer(42)),
        ("x = 0o17", .integer(15)),
        ("x = 0b101", .integer(5)),
        ("x = 1.5", .float(1.5)),
        ("x = -2e-3", .float(-0.002)),
        ("x = 6.02E+2", .float(602)),
        ("x = -inf", .float(-.infinity)),
        ("x = true", .boolean(true)),
        ("x = \"a\\tb\\u00e9\\U0001F600\\\\\"", .string("a\tbé😀\\")),
        ("x = 'C:\\path'", .string("C:\\path")),
        ("x = \"\"\"\nline1\n  line2\\\n    more\"\"\"", .string("line1\n  line2more")),
        ("x = '''\nraw ''quoted'' \\n'''", .string("raw ''quoted'' \\n")),
        ("x = \"\"\"a\"\"\"\"\"", .string("a\"\"")),
        ("x = [1, [\"a\"], { y = 2 }, ]", .array([.integer(1), .array([.string("a")]), .table(TOML.Table().setting("y", .integer(2)))])),
        ("x = [\n  1, # one\n  2\n]", .array([.integer(1), .integer(2)])),
        ("x = {}", .table(TOML.Table())),
        ("\"x\" = 1 # comment", .integer(1)),
    ])
    func values(text: String, expected: TOML.Value) throws {
        #expect(try Self.value(text) == expected)
    }

    @Test func tablesArraysOfTablesAndDottedKeys() throws {
        let document = try TOML.parse("""
            top = 1
            [a.b]
            c.d = "e"
            [[n]]
            name = "first"
            [n.inner]
            k = 1
            [[n]]
            name = "second"
            [a]
            z = 0
            """)
        #expect(document.keys == ["top", "a", "n"])
        #expect(document["a"]?.table?["b"]?.table?["c"]?.table?["d"] == .string("e"))
        #expect(document["a"]?.table?["z"] == .integer(0))
        let nodes = try #require(document["n"]?.array)
        #expect(nodes.map { $0.table?["name"] } == [.string("first"), .string("second")])
        #expect(nodes[0].table?["inner"]?.table?["k"] == .integer(1))
    }

    /// The first three are inputs that abort the process in toml++ 3.4.0 (TOMLKit), found by
    /// Tools/Fuzz FuzzFiles; the rest are the spec's invalid cases.
    @Test(arguments: [
        ("[\n", 1, 2, "expected a key"),
        ("[[[1]]]", 1, 3, "expected a key"),
        ("a=[}", 1, 4, "expected a value"),
        ("[[=", 1, 3, "expected a key"),
        ("\"\"=0\n\"\"=1", 2, 5, "defined twice"),
        ("[a]\n[a]", 2, 4, "already defined"),
        ("a = 1\n[a]", 2, 4, "already defined"),
        ("[[a]]\n[a]", 2, 4, "already defined"),
        ("a.b = 1\n[a]", 2, 4, "already defined"),
        ("x = 01", 1, 5, "not a value"),
        ("x = 1__0", 1, 5, "not a value"),
        ("x = 1.", 1, 5, "not a value"),
        ("x = 0x", 1, 5, "not a value"),
        ("x = 99999999999999999999", 1, 5, "not a value"),
        ("x = 1979-05-27", 1, 5, "dates and times"),
        ("x = \"open", 1, 10, "not closed"),
        ("x = \"open\ny = 1", 1, 10, "must end on its line"),
        ("x = \"\\q\"", 1, 7, "unknown escape"),
        ("x = \"\\u12\"", 1, 8, "hex digits"),
        ("x = 1 2", 1, 7, "end of the line"),
        ("x = { a = 1,\n b = 2 }", 1, 13, "expected a key"),
        ("x = [1 2]", 1, 8, "expected ',' or ']'"),
        ("x", 1, 2, "expected '='"),
        ("x = ", 1, 5, "expected a value"),
        ("# bell \u{7}", 1, 8, "in a comment"),
        ("x = 1\r", 1, 6, "carriage return"),
    ])
    func errorsSayWhere(text: String, line: Int, column: Int, message: String) {
        do {
            let table = try TOML.parse(text)
            Issue.record("accepted \(text.debugDescription): \(table)")
        } catch {
            #expect(error.line == line && error.column == column, "\(text.debugDescription): \(error)")
            #expect(error.message.contains(message), "\(text.debugDescription): \(error)")
        }
    }

    @Test func nestingAndSizeAreBounded() {
        let deep = "x = " + String(repeating: "[", count: 10_000)
        #expect(throws: TOML.SyntaxError.self) { try TOML.parse(deep) }
        let inline = "x = " + String(repeating: "{a=", count: 10_000)
        #expect(throws: TOML.SyntaxError.self) { try TOML.parse(inline) }
        let big = String(repeating: "#", count: TOML.bytesMax + 1)
        #expect(throws: TOML.SyntaxError.self) { try TOML.parse(big) }
    }

    /// A topology's error for a syntax mistake names the file, the line and the column.
    @Test func aTopologyNamesTheLine() {
        do {
            _ = try Topology.parse("[cluster]\nname = \"x\"\n[\n", path: "bad.toml")
            Issue.record("accepted")
        } catch {
            #expect(error.description.hasPrefix("bad.toml: line 3, column 2: TOML syntax error: expected a key"),
                    "\(error)")
        }
    }
}
