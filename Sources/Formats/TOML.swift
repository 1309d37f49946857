/// TOML 1.0 for topology and scenario files: tables, arrays of tables, dotted keys, strings of all
/// four kinds, integers, floats, booleans, arrays and inline tables. Dates and times are refused (no
/// file of ours has one). Every malformed input is a `SyntaxError` with its line and column.
///
/// Why not TOMLKit: its bundled toml++ 3.4.0 aborts the process (C `assert`, on in SwiftPM release
/// builds too) on malformed input as short as `[` and a newline or `a=[}`; Tools/Fuzz FuzzFiles found
/// three such inputs in its first five minutes. A user's typo must be an error, never a crash.
/// Bounded: at most `bytesMax` of text and `depthMax` levels of nested arrays and inline tables.
public enum TOML {
    public static let bytesMax = 1 << 20
    public static let depthMax = 32

    /// A table: keys in the order the file gives them, each with a value.
    public struct Table: Sendable, Equatable {
        public fileprivate(set) var keys: [String] = []
        fileprivate var values: [String: Value] = [:]

        public init() {}

        public subscript(key: String) -> Value? { values[key] }

        func setting(_ key: String, _ value: Value) -> Table {
            var copy = self
            copy.set(key, value)
            return copy
        }

        fileprivate mutating func set(_ key: String, _ value: Value) {
            if values.updateValue(value, forKey: key) == nil { keys.append(key) }
        }
    }

    public indirect enum Value: Sendable, Equatable {
        case string(String)
        case integer(Int64)
        case float(Double)
        case boolean(Bool)
        case array([Value])
        case table(Table)

        public var string: String? { if case .string(let text) = self { text } else { nil } }
        public var int: Int? { if case .integer(let number) = self { Int(number) } else { nil } }
        public var double: Double? { if case .float(let number) = self { number } else { nil } }
        public var bool: Bool? { if case .boolean(let flag) = self { flag } else { nil } }
        public var array: [Value]? { if case .array(let items) = self { items } else { nil } }
        public var table: Table? { if case .table(let inner) = self { inner } else { nil } }

        /// What the value is, for error messages ("expected a string, got integer").
        public var type: String {
            switch self {
            case .string: "string"
            case .integer: "integer"
            case .float: "float"
            case .boolean: "boolean"
            case .array: "array"
            case .table: "table"
            }
        }
    }

    public struct SyntaxError: Error, Equatable, CustomStringConvertible {
        public var line: Int
        public var column: Int
        public var message: String

        public var description: String { "line \(line), column \(column): \(message)" }
    }

    public static func parse(_ text: String) throws(SyntaxError) -> Table {
        var parser = Parser(Array(text.utf8))
        guard parser.bytes.count <= bytesMax else {
            throw SyntaxError(line: 1, column: 1, message: "the file is \(parser.bytes.count) bytes, at most \(bytesMax)")
        }
        try parser.document()
        return parser.root.value
    }
}

/// While parsing, tables are shared nodes (a header reopens a table made earlier); `value` freezes them.
private final class TableNode {
    enum Origin { case header, implicit, dotted, inline }

    enum Entry {
        case value(TOML.Value)
        case table(TableNode)
        case tables([TableNode])
    }

    var origin: Origin
    var keys: [String] = []
    var entries: [String: Entry] = [:]

    init(_ origin: Origin) { self.origin = origin }

    func set(_ key: String, _ entry: Entry) {
        if entries.updateValue(entry, forKey: key) == nil { keys.append(key) }
    }

    var value: TOML.Table {
        var table = TOML.Table()
        for key in keys {
            switch entries[key]! {
            case .value(let value): table.set(key, value)
            case .table(let node): table.set(key, .table(node.value))
            case .tables(let nodes): table.set(key, .array(nodes.map { .table($0.value) }))
            }
        }
        return table
    }
}

private struct Parser {
    let bytes: [UInt8]
    var index = 0
    var line = 1
    var lineStart = 0
    let root = TableNode(.header)

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    func peek(_ offset: Int) -> UInt8? { index + offset < bytes.count ? bytes[index + offset] : nil }

    func fail(_ message: String) -> TOML.SyntaxError {
        TOML.SyntaxError(line: line, column: index - lineStart + 1, message: message)
    }

    /// What is at the cursor, for messages: a character, "the end of the line" or "the end of the file".
    var found: String {
        guard let byte = peek else { return "the end of the file" }
        if byte == 0x0A || byte == 0x0D { return "the end of the line" }
        if byte < 0x20 || byte == 0x7F { return "control character 0x\(String(byte, radix: 16))" }
        let character = String(decoding: bytes[index..<min(index + 4, bytes.count)], as: UTF8.self).first!
        return "'\(character)'"
    }

    mutating func skipSpaces() {
        while let byte = peek, byte == 0x20 || byte == 0x09 { index += 1 }
    }

    mutating func skipComment() throws(TOML.SyntaxError) {
        guard peek == 0x23 else { return }
        while let byte = peek, byte != 0x0A, byte != 0x0D {
            guard byte >= 0x20 && byte != 0x7F || byte == 0x09 else { throw fail("\(found) in a comment") }
            index += 1
        }
    }

    /// Consumes a newline (LF or CRLF); false if there is none here.
    mutating func newline() throws(TOML.SyntaxError) -> Bool {
        if peek == 0x0D {
            guard peek(1) == 0x0A else { throw fail("a carriage return must be followed by a line feed") }
            index += 1
        }
        guard peek == 0x0A else { return false }
        index += 1
        line += 1
        lineStart = index
        return true
    }

    /// Spaces, comments and newlines (between array elements and between lines of the document).
    mutating func skipBlank() throws(TOML.SyntaxError) {
        while true {
            skipSpaces()
            try skipComment()
            if try !newline() { return }
        }
    }

    /// After a value or header: spaces, a comment, then the end of the line or of the file.
    mutating func endOfLine(after what: String) throws(TOML.SyntaxError) {
        skipSpaces()
        try skipComment()
        if peek == nil { return }
        guard try newline() else { throw fail("expected the end of the line after \(what), found \(found)") }
    }

    mutating func document() throws(TOML.SyntaxError) {
        var current = root
        while true {
            try skipBlank()
            guard let byte = peek else { return }
            if byte == 0x5B {
                current = try header()
            } else {
                try keyValue(into: current)
                try endOfLine(after: "a value")
            }
        }
    }

    // MARK: keys and tables

    static func isBare(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
            || byte == 0x5F || byte == 0x2D
    }

    /// A dotted key: bare or quoted parts separated by dots, spaces allowed around the dots.
    mutating func key() throws(TOML.SyntaxError) -> [String] {
        var parts: [String] = []
        while true {
            skipSpaces()
            switch peek {
            case 0x22?: parts.append(try string(0x22, multiline: false))
            case 0x27?: parts.append(try string(0x27, multiline: false))
            case let byte? where Parser.isBare(byte):
                let start = index
                while let next = peek, Parser.isBare(next) { index += 1 }
                parts.append(String(decoding: bytes[start..<index], as: UTF8.self))
            default:
                throw fail("expected a key (letters, digits, '_', '-' or a quoted string), found \(found)")
            }
            skipSpaces()
            guard peek == 0x2E else { return parts }
            index += 1
        }
    }

    /// `[a.b]` or `[[a.b]]`: the table that the following key/value lines fill.
    mutating func header() throws(TOML.SyntaxError) -> TableNode {
        index += 1
        let isArray = peek == 0x5B
        if isArray { index += 1 }
        let path = try key()
        guard peek == 0x5D, !isArray || peek(1) == 0x5D else {
            throw fail("expected '\(isArray ? "]]" : "]")' to close the table header, found \(found)")
        }
        index += isArray ? 2 : 1
        let name = path.joined(separator: ".")
        var node = root
        for part in path.dropLast() { node = try child(of: node, part, header: name) }
        let last = path.last!
        let made: TableNode
        switch node.entries[last] {
        case nil:
            made = TableNode(.header)
            node.set(last, isArray ? .tables([made]) : .table(made))
        case .table(let existing)? where !isArray && existing.origin == .implicit:
            existing.origin = .header
            made = existing
        case .tables(var list)? where isArray:
            made = TableNode(.header)
            list.append(made)
            node.entries[last] = .tables(list)
        default:
            throw fail("[\(isArray ? "[" : "")\(name)\(isArray ? "]" : "")] is already defined")
        }
        try endOfLine(after: "the table header")
        return made
    }

    /// The table `part` inside `node` on the way to a header, made if it does not exist yet.
    mutating func child(of node: TableNode, _ part: String, header name: String) throws(TOML.SyntaxError) -> TableNode {
        switch node.entries[part] {
        case nil:
            let made = TableNode(.implicit)
            node.set(part, .table(made))
            return made
        case .table(let existing)? where existing.origin != .inline:
            return existing
        case .tables(let list)?:
            return list.last!
        default:
            throw fail("[\(name)]: '\(part)' is already a value, not a table")
        }
    }

    /// `a.b = value` inside `table`.
    mutating func keyValue(into table: TableNode) throws(TOML.SyntaxError) {
        let path = try key()
        guard peek == 0x3D else { throw fail("expected '=' after the key '\(path.joined(separator: "."))', found \(found)") }
        index += 1
        skipSpaces()
        let value = try self.value(depth: 0)
        var node = table
        for part in path.dropLast() {
            switch node.entries[part] {
            case nil:
                let made = TableNode(.dotted)
                node.set(part, .table(made))
                node = made
            case .table(let existing)? where existing.origin == .dotted:
                node = existing
            default:
                throw fail("'\(path.joined(separator: "."))': '\(part)' is already defined and cannot be extended here")
            }
        }
        let last = path.last!
        guard node.entries[last] == nil else { throw fail("'\(path.joined(separator: "."))' is defined twice") }
        node.set(last, .value(value))
    }

    // MARK: values

    mutating func value(depth: Int) throws(TOML.SyntaxError) -> TOML.Value {
        guard depth < TOML.depthMax else { throw fail("arrays and inline tables nested deeper than \(TOML.depthMax)") }
        switch peek {
        case 0x22?:
            let multiline = peek(1) == 0x22 && peek(2) == 0x22
            return .string(try string(0x22, multiline: multiline))
        case 0x27?:
            let multiline = peek(1) == 0x27 && peek(2) == 0x27
            return .string(try string(0x27, multiline: multiline))
        case 0x5B?:
            return try array(depth: depth)
        case 0x7B?:
            return .table(try inlineTable(depth: depth).value)
        case nil, 0x0A?, 0x0D?, 0x23?:
            throw fail("expected a value, found \(found)")
        default:
            return try scalar()
        }
    }

    mutating func array(depth: Int) throws(TOML.SyntaxError) -> TOML.Value {
        index += 1
        var items: [TOML.Value] = []
        while true {
            try skipBlank()
            if peek == 0x5D { break }
            items.append(try value(depth: depth + 1))
            try skipBlank()
            if peek == 0x2C {
                index += 1
                continue
            }
            guard peek == 0x5D else { throw fail("expected ',' or ']' in an array, found \(found)") }
            break
        }
        index += 1
        return .array(items)
    }

    mutating func inlineTable(depth: Int) throws(TOML.SyntaxError) -> TableNode {
        index += 1
        let node = TableNode(.dotted)
        skipSpaces()
        if peek == 0x7D {
            index += 1
            node.origin = .inline
            return node
        }
        while true {
            let path = try key()
            guard peek == 0x3D else { throw fail("expected '=' after the key '\(path.joined(separator: "."))', found \(found)") }
            index += 1
            skipSpaces()
            let value = try self.value(depth: depth + 1)
            var target = node
            for part in path.dropLast() {
                switch target.entries[part] {
                case nil:
                    let made = TableNode(.dotted)
                    target.set(part, .table(made))
                    target = made
                case .table(let existing)? where existing.origin == .dotted:
                    target = existing
                default:
                    throw fail("'\(path.joined(separator: "."))': '\(part)' is already defined")
                }
            }
            guard target.entries[path.last!] == nil else { throw fail("'\(path.joined(separator: "."))' is defined twice") }
            target.set(path.last!, .value(value))
            skipSpaces()
            if peek == 0x2C {
                index += 1
                skipSpaces()
                continue
            }
            guard peek == 0x7D else { throw fail("expected ',' or '}' in an inline table (on one line), found \(found)") }
            index += 1
            node.origin = .inline
            return node
        }
    }

    /// A boolean, an integer, a float, inf or nan: the run of characters up to a delimiter.
    mutating func scalar() throws(TOML.SyntaxError) -> TOML.Value {
        let start = index
        while let byte = peek, !(byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x2C
                                 || byte == 0x5D || byte == 0x7D || byte == 0x23) { index += 1 }
        let token = String(decoding: bytes[start..<index], as: UTF8.self)
        let column = start - lineStart + 1
        func bad(_ message: String) -> TOML.SyntaxError { TOML.SyntaxError(line: line, column: column, message: message) }
        switch token {
        case "true": return .boolean(true)
        case "false": return .boolean(false)
        case "inf", "+inf": return .float(.infinity)
        case "-inf": return .float(-.infinity)
        case "nan", "+nan", "-nan": return .float(.nan)
        default: break
        }
        if token.isEmpty { throw bad("expected a value, found \(found)") }
        let isDate = token.utf8.count >= 5 && token.utf8.prefix(4).allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
            && token.utf8.dropFirst(4).first == 0x2D
        if isDate || (token.utf8.count >= 3 && token.utf8.dropFirst(2).first == 0x3A) {
            throw bad("dates and times are not used in Faultline files: '\(token)'")
        }
        if let number = TOML.integer(token) { return .integer(number) }
        if let number = TOML.float(token) { return .float(number) }
        throw bad("'\(token)' is not a value (a string needs quotes; numbers are like 42, -7, 0x2a, 1.5, 3e6)")
    }

    // MARK: strings

    /// A string: `"…"` or `"""…"""` (basic, with escapes), `'…'` or `'''…'''` (literal, taken as written).
    mutating func string(_ quote: UInt8, multiline: Bool) throws(TOML.SyntaxError) -> String {
        let basic = quote == 0x22
        index += multiline ? 3 : 1
        if multiline { _ = try newline() }
        var out: [UInt8] = []
        while true {
            guard let byte = peek else { throw fail("a string is not closed before the end of the file") }
            switch byte {
            case quote:
                if try closes(quote, multiline: multiline, into: &out) { return String(decoding: out, as: UTF8.self) }
            case 0x5C where basic:
                index += 1
                if multiline, let next = peek, next == 0x20 || next == 0x09 || next == 0x0A || next == 0x0D {
                    // A line-ending backslash: skip whitespace and newlines up to the next character.
                    skipSpaces()
                    guard try newline() else { throw fail("only whitespace may follow a line-ending backslash") }
                    while true {
                        skipSpaces()
                        if try !newline() { break }
                    }
                    continue
                }
                try escape(into: &out)
            case 0x0A, 0x0D:
                guard multiline else { throw fail("a string in \(basic ? "\"…\"" : "'…'") must end on its line") }
                _ = try newline()
                out.append(0x0A)
            default:
                guard byte >= 0x20 && byte != 0x7F || byte == 0x09 else {
                    throw fail("\(found) in a string\(basic ? " (write it as an escape)" : "")")
                }
                out.append(byte)
                index += 1
            }
        }
    }

    /// At a quote inside a string: whether it closes the string (consumed), or quotes that belong to
    /// a multi-line string's text (appended; up to two may stand just before the closing three).
    mutating func closes(_ quote: UInt8, multiline: Bool, into out: inout [UInt8]) throws(TOML.SyntaxError) -> Bool {
        guard multiline else {
            index += 1
            return true
        }
        var quotes = 0
        while peek(quotes) == quote { quotes += 1 }
        guard quotes <= 5 else { throw fail("too many quotes closing a multi-line string") }
        out.append(contentsOf: repeatElement(quote, count: quotes >= 3 ? quotes - 3 : quotes))
        index += quotes
        return quotes >= 3
    }

    mutating func escape(into out: inout [UInt8]) throws(TOML.SyntaxError) {
        guard let byte = peek else { throw fail("a string is not closed before the end of the file") }
        index += 1
        switch byte {
        case 0x62: out.append(0x08)
        case 0x74: out.append(0x09)
        case 0x6E: out.append(0x0A)
        case 0x66: out.append(0x0C)
        case 0x72: out.append(0x0D)
        case 0x22: out.append(0x22)
        case 0x5C: out.append(0x5C)
        case 0x75, 0x55:
            let count = byte == 0x75 ? 4 : 8
            guard index + count <= bytes.count,
                  let code = UInt32(String(decoding: bytes[index..<index + count], as: UTF8.self), radix: 16),
                  bytes[index..<index + count].allSatisfy({ $0 != 0x2B && $0 != 0x2D }),
                  let scalar = Unicode.Scalar(code) else {
                throw fail("\\\(byte == 0x75 ? "u" : "U") needs \(count) hex digits of a Unicode scalar value")
            }
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
            index += count
        default:
            index -= 1
            throw fail("unknown escape '\\\(found.trimmingQuotes)' (use \\\\ for a backslash)")
        }
    }
}

private extension String {
    var trimmingQuotes: Substring { hasPrefix("'") && hasSuffix("'") && count >= 2 ? dropFirst().dropLast() : Substring(self) }
}

extension TOML {
    /// A TOML integer: decimal with an optional sign (no leading zeros), or 0x, 0o, 0b; '_' only between digits.
    static func integer(_ token: String) -> Int64? {
        var text = Substring(token)
        var radix = 10
        for (prefix, base) in [("0x", 16), ("0o", 8), ("0b", 2)] where text.hasPrefix(prefix) {
            text = text.dropFirst(2)
            radix = base
        }
        var negative = false
        if radix == 10, let sign = text.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            text = text.dropFirst()
        }
        guard let digits = plainDigits(text, radix: radix) else { return nil }
        if radix == 10 && digits.count > 1 && digits.hasPrefix("0") { return nil }
        return Int64(negative ? "-" + digits : digits, radix: radix)
    }

    /// A TOML float: an integer part, then a fraction, an exponent or both.
    static func float(_ token: String) -> Double? {
        var text = Substring(token)
        var sign = ""
        if let first = text.first, first == "+" || first == "-" {
            sign = first == "-" ? "-" : ""
            text = text.dropFirst()
        }
        let exponentAt = text.firstIndex { $0 == "e" || $0 == "E" }
        let mantissa = exponentAt.map { text[..<$0] } ?? text
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = plainDigits(parts[0], radix: 10) else { return nil }
        if whole.count > 1 && whole.hasPrefix("0") { return nil }
        var normal = sign + whole
        if parts.count == 2 {
            guard let fraction = plainDigits(parts[1], radix: 10) else { return nil }
            normal += "." + fraction
        }
        if let exponentAt {
            var exponent = text[text.index(after: exponentAt)...]
            var exponentSign = ""
            if let first = exponent.first, first == "+" || first == "-" {
                exponentSign = String(first)
                exponent = exponent.dropFirst()
            }
            guard let digits = plainDigits(exponent, radix: 10) else { return nil }
            normal += "e" + exponentSign + digits
        } else if parts.count == 1 {
            return nil
        }
        return Double(normal)
    }

    /// Digits of `radix` with single underscores between them, underscores removed; nil otherwise.
    static func plainDigits(_ text: Substring, radix: Int) -> String? {
        guard let first = text.first, let last = text.last, first != "_", last != "_", !text.contains("__") else { return nil }
        let digits = text.filter { $0 != "_" }
        guard digits.allSatisfy({ $0.isASCII && $0.hexDigitValue.map { $0 < radix } == true }) else { return nil }
        return digits
    }
}
